#!/usr/bin/env bash
# Real mail servers on loopback for smtpcheck's interop tests (tests/it/interop.rs; only them: `cargo test --test it interop::`).
#
#   scripts/interop.sh up       install what is missing, start everything (a no-op when running)
#   scripts/interop.sh down     stop what `up` started (nothing else); fine when already down
#   scripts/interop.sh status   say what is running (exit 0 when everything is up, else 3)
#
# What `up` starts, all on 127.0.0.1 only:
#   - Postfix: a PRIVATE instance (its own config, queue and data directories under the state
#     directory; the system's /etc/postfix is neither read nor changed), smtpd on POSTFIX_PORT.
#     Accepts mail for user@interop.test and other@interop.test into Maildirs, refuses unknown
#     users (550 5.1.1) and relaying (554 5.7.1, even from 127.0.0.1), requires HELO/EHLO,
#     offers STARTTLS with a CA + leaf made at start-up, SIZE 1000000 (SMTPCHECK_INTEROP_SIZE_LIMIT
#     sets another limit, e.g. for scripts/bench.sh's 2 MB message), and keeps
#     smtpd_forbid_bare_newline = no (bare LF ends a line, as on a vulnerable server).
#   - a second smtpd of that Postfix on POSTFIX_X509_PORT whose STARTTLS certificate is made the
#     usual way, `openssl req -x509` with no extension file (self-signed, basicConstraints
#     CA:TRUE), as on many internal relays; otherwise the same as the first.
#     Two more smtpd listeners of the same instance: on POSTFIX_STARTTLS_PORT TLS is mandatory
#     (smtpd_tls_security_level = encrypt: MAIL before STARTTLS gets "530 5.7.0 Must issue a
#     STARTTLS command first"); on POSTFIX_LIMIT_PORT smtpd_recipient_limit = 3 (the 4th RCPT of a
#     transaction gets "452 4.5.3 Error: too many recipients").
#   - aiosmtpd (scripts/interop_aiosmtpd.py) on AIOSMTPD_PORT: refuses EHLO with 502, accepts
#     HELO, spools each message to AIOSMTPD_SPOOL.
#   - dnsmasq on DNS_PORT (UDP and TCP): interop.test MX 10 mx.interop.test, mx.interop.test A
#     127.0.0.1; nothing else (no upstream servers, no /etc/hosts).
#   - Dovecot (IMAP, for `send --confirm`): a PRIVATE instance (its own config, run and state
#     directories under the state directory; the system's /etc/dovecot is neither read nor
#     changed) on IMAP_PORT, STARTTLS with the CA-signed certificate above, and on IMAPS_PORT
#     (implicit TLS, same certificate), for the mailboxes imap1, imap2 and imap3@interop.test
#     (passwd-file users, password IMAP_PASSWORD; and for IMAP_OAUTH2_USER, imap2, the token
#     IMAP_OAUTH2_TOKEN by AUTHENTICATE XOAUTH2 or OAUTHBEARER, through an oauth2 passdb asking the
#     introspection endpoint below, as the SASL Dovecot does). Postfix hands their mail to this
#     Dovecot over LMTP (a unix socket in its run directory), and a Sieve rule (sieve_before) files mail
#     carrying the test marker (a header field `X-Smtpcheck-Test: junk`, or the address
#     USER+junk@interop.test) into the Junk folder, whose special use is \Junk. On 127.0.0.2
#     (same ports) the same server announces no IDLE, so clients fall back to polling.
#   - SASL (for AUTH): a fifth smtpd listener on SUBMISSION_PORT with smtpd_sasl_type = dovecot,
#     AUTH only after STARTTLS (smtpd_tls_auth_only) and mail only from authenticated clients
#     (others get "554 5.7.1 … Client host rejected" at RCPT), checked by a second PRIVATE
#     Dovecot (auth only: protocols = none; its own config, run and state directories under
#     $DIR/dovecot-sasl) over a UNIX socket: PLAIN, LOGIN and SCRAM-SHA-256 for SASL_USER from a
#     passwd-file (the password stored as {SCRAM-SHA-256}), XOAUTH2 and OAUTHBEARER through its
#     oauth2 passdb, which asks a token-introspection endpoint (scripts/interop_introspect.py,
#     RFC 7662, POST) on INTROSPECT_PORT. Tokens are random per `up`: OAUTH2_TOKEN is active for
#     SASL_USER, OAUTH2_EXPIRED_TOKEN is inactive, OAUTH2_OTHER_TOKEN is active for another user.
#
# State directory: ${SMTPCHECK_INTEROP_DIR:-/tmp/smtpcheck-interop}. `up` writes $DIR/env last,
# once everything answers; tests read it (KEY=value lines, also fit for `source`).
# Ports: SMTPCHECK_INTEROP_POSTFIX_PORT (2525), SMTPCHECK_INTEROP_AIOSMTPD_PORT (2526),
# SMTPCHECK_INTEROP_DNS_PORT (5353), SMTPCHECK_INTEROP_POSTFIX_X509_PORT (2527),
# SMTPCHECK_INTEROP_POSTFIX_STARTTLS_PORT (2528), SMTPCHECK_INTEROP_POSTFIX_LIMIT_PORT (2529),
# SMTPCHECK_INTEROP_IMAP_PORT (2143), SMTPCHECK_INTEROP_IMAPS_PORT (2993),
# SMTPCHECK_INTEROP_SUBMISSION_PORT (2530), SMTPCHECK_INTEROP_INTROSPECT_PORT (2531).
#
# Needs root (Postfix's master runs as root and drops to the postfix user). Installs, when
# missing: postfix (debconf "No configuration", so no system mail setup is made), openssl,
# dnsmasq-base (the binary only, no service), dovecot-imapd, dovecot-lmtpd and dovecot-sieve (no
# service is started) from Debian,
# and aiosmtpd from PyPI.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly DIR="${SMTPCHECK_INTEROP_DIR:-/tmp/smtpcheck-interop}"
readonly POSTFIX_PORT="${SMTPCHECK_INTEROP_POSTFIX_PORT:-2525}"
readonly AIOSMTPD_PORT="${SMTPCHECK_INTEROP_AIOSMTPD_PORT:-2526}"
readonly DNS_PORT="${SMTPCHECK_INTEROP_DNS_PORT:-5353}"
readonly POSTFIX_X509_PORT="${SMTPCHECK_INTEROP_POSTFIX_X509_PORT:-2527}"
readonly X509_NAME=relay.interop.test
readonly POSTFIX_STARTTLS_PORT="${SMTPCHECK_INTEROP_POSTFIX_STARTTLS_PORT:-2528}"
readonly POSTFIX_LIMIT_PORT="${SMTPCHECK_INTEROP_POSTFIX_LIMIT_PORT:-2529}"
readonly IMAP_PORT="${SMTPCHECK_INTEROP_IMAP_PORT:-2143}"
readonly IMAPS_PORT="${SMTPCHECK_INTEROP_IMAPS_PORT:-2993}"
readonly IMAP_USERS=(imap1 imap2 imap3)
readonly IMAP_PASSWORD=interop-imap-password
# The IMAP user with an OAuth token (IMAP_OAUTH2_TOKEN), checked by the IMAP Dovecot's oauth2 passdb.
readonly IMAP_OAUTH2_USER="${IMAP_USERS[1]}@interop.test"
# The address on which Dovecot announces no IDLE (loopback too).
readonly NO_IDLE_HOST=127.0.0.2
readonly HOST=127.0.0.1
readonly DOMAIN=interop.test
readonly MX_HOST="mx.$DOMAIN"
readonly USERS=(user other)
readonly SIZE_LIMIT="${SMTPCHECK_INTEROP_SIZE_LIMIT:-1000000}"
readonly WAIT_TRIES=50 # × 0.2 s
readonly SUBMISSION_PORT="${SMTPCHECK_INTEROP_SUBMISSION_PORT:-2530}"
readonly INTROSPECT_PORT="${SMTPCHECK_INTEROP_INTROSPECT_PORT:-2531}"
readonly SASL_USER="sasl@$DOMAIN"
readonly SASL_OTHER_USER="other@$DOMAIN"
readonly SASL_PASSWORD=interop-sasl-password

# Layout of the state directory.
readonly PF_CONF="$DIR/postfix/etc"
readonly PF_QUEUE="$DIR/postfix/spool"
readonly PF_DATA="$DIR/postfix/data"
readonly PF_LOG="$DIR/postfix.log"
readonly MAIL_BASE="$DIR/mail"
readonly TLS_DIR="$DIR/tls"
readonly AIO_SPOOL="$DIR/aiosmtpd-spool"
readonly AIO_PID="$DIR/aiosmtpd.pid"
readonly AIO_LOG="$DIR/aiosmtpd.log"
readonly DNS_PID="$DIR/dnsmasq.pid"
readonly DNS_LOG="$DIR/dnsmasq.log"
readonly ENV_FILE="$DIR/env"
readonly DV_DIR="$DIR/dovecot"
readonly DV_CONF="$DV_DIR/dovecot.conf"
readonly DV_LOG="$DIR/dovecot.log"
# Dovecot's LMTP socket (Postfix's lmtp client connects to it) and its global Sieve script.
readonly DV_LMTP="$DV_DIR/run/lmtp"
readonly DV_SIEVE="$DV_DIR/sieve/junk-marker.sieve"
# The SASL Dovecot and its introspection endpoint.
readonly DS_DIR="$DIR/dovecot-sasl"
readonly DS_CONF="$DS_DIR/dovecot.conf"
readonly DS_LOG="$DIR/dovecot-sasl.log"
readonly DS_SOCKET="$DS_DIR/run/auth-client"
readonly DS_TOKENS="$DS_DIR/tokens"
readonly INTROSPECT_PID="$DIR/introspect.pid"
readonly INTROSPECT_LOG="$DIR/introspect.log"

say() { printf 'interop: %s\n' "$*" >&2; }
die() {
	printf 'interop: error: %s\n' "$*" >&2
	exit 1
}

check_settings() {
	[[ "$DIR" =~ ^/[A-Za-z0-9._/-]+$ ]] ||
		die "SMTPCHECK_INTEROP_DIR must be an absolute path of letters, digits, '.', '_', '-' and '/' (got '$DIR')"
	[[ "$DIR" != / ]] || die "SMTPCHECK_INTEROP_DIR must not be /"
	local name port
	for name in POSTFIX_PORT AIOSMTPD_PORT DNS_PORT POSTFIX_X509_PORT POSTFIX_STARTTLS_PORT POSTFIX_LIMIT_PORT IMAP_PORT IMAPS_PORT; do
		port="${!name}"
		if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1024 || port > 65535)); then
			die "SMTPCHECK_INTEROP_$name must be an unprivileged port number (1024-65535), got '$port'"
		fi
	done
	[[ "$POSTFIX_PORT" != "$AIOSMTPD_PORT" && "$POSTFIX_PORT" != "$DNS_PORT" && "$AIOSMTPD_PORT" != "$DNS_PORT" ]] ||
		die "the Postfix, aiosmtpd and DNS ports must all differ"
	local ports
	ports="$(printf '%s\n' "$POSTFIX_PORT" "$AIOSMTPD_PORT" "$DNS_PORT" "$POSTFIX_X509_PORT" "$POSTFIX_STARTTLS_PORT" "$POSTFIX_LIMIT_PORT" "$IMAP_PORT" "$IMAPS_PORT")"
	[[ "$(sort -u <<<"$ports" | wc -l)" == 8 ]] ||
		die "the ports (Postfix, its x509, STARTTLS-required and recipient-limit listeners, aiosmtpd, DNS, IMAP, IMAPS) must all differ"
	check_sasl_settings
	[[ "$SIZE_LIMIT" =~ ^[1-9][0-9]{3,9}$ ]] ||
		die "SMTPCHECK_INTEROP_SIZE_LIMIT must be a byte count from 1000 to 9999999999, got '$SIZE_LIMIT'"
}

# check_sasl_settings: the submission and introspection ports are valid and differ from the rest.
check_sasl_settings() {
	local name port other
	for name in SUBMISSION_PORT INTROSPECT_PORT; do
		port="${!name}"
		if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1024 || port > 65535)); then
			die "SMTPCHECK_INTEROP_$name must be an unprivileged port number (1024-65535), got '$port'"
		fi
		for other in POSTFIX_PORT AIOSMTPD_PORT DNS_PORT POSTFIX_X509_PORT POSTFIX_STARTTLS_PORT POSTFIX_LIMIT_PORT IMAP_PORT IMAPS_PORT; do
			[[ "$port" != "${!other}" ]] || die "SMTPCHECK_INTEROP_$name must differ from SMTPCHECK_INTEROP_$other ($port)"
		done
	done
	[[ "$SUBMISSION_PORT" != "$INTROSPECT_PORT" ]] ||
		die "SMTPCHECK_INTEROP_SUBMISSION_PORT and SMTPCHECK_INTEROP_INTROSPECT_PORT must differ"
}

# ---------------------------------------------------------------------------------------------
# Installation

postfix_bin() { command -v postfix 2>/dev/null || { [[ -x /usr/sbin/postfix ]] && echo /usr/sbin/postfix; } || true; }
postconf_bin() { command -v postconf 2>/dev/null || { [[ -x /usr/sbin/postconf ]] && echo /usr/sbin/postconf; } || true; }
dnsmasq_bin() { command -v dnsmasq 2>/dev/null || { [[ -x /usr/sbin/dnsmasq ]] && echo /usr/sbin/dnsmasq; } || true; }
dovecot_bin() { command -v dovecot 2>/dev/null || { [[ -x /usr/sbin/dovecot ]] && echo /usr/sbin/dovecot; } || true; }
sievec_bin() { command -v sievec 2>/dev/null || { [[ -x /usr/bin/sievec ]] && echo /usr/bin/sievec; } || true; }

install_missing() {
	local pkgs=()
	[[ -n "$(postfix_bin)" ]] || pkgs+=(postfix)
	command -v openssl >/dev/null 2>&1 || pkgs+=(openssl)
	[[ -n "$(dnsmasq_bin)" ]] || pkgs+=(dnsmasq-base)
	[[ -n "$(dovecot_bin)" && -x /usr/lib/dovecot/imap ]] || pkgs+=(dovecot-imapd)
	[[ -x /usr/lib/dovecot/lmtp ]] || pkgs+=(dovecot-lmtpd)
	[[ -f /usr/lib/dovecot/modules/lib90_sieve_plugin.so && -n "$(sievec_bin)" ]] || pkgs+=(dovecot-sieve)
	if ((${#pkgs[@]})); then
		[[ $EUID -eq 0 ]] || die "missing Debian packages (${pkgs[*]}): run as root so they can be installed"
		command -v apt-get >/dev/null 2>&1 || die "missing ${pkgs[*]} and no apt-get to install them"
		say "installing Debian packages: ${pkgs[*]}"
		# No system mail setup: Postfix installed but not configured (no /etc/postfix/main.cf).
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
		export DEBIAN_FRONTEND=noninteractive
		local log="$DIR/install.log"
		apt-get update -qq >"$log" 2>&1 || {
			tail -n 20 "$log" >&2
			die "apt-get update failed (log: $log)"
		}
		# Installing postfix removes another MTA (exim4, …): refuse rather than change the mail setup.
		local removals
		removals="$(apt-get -s install --no-install-recommends "${pkgs[@]}" 2>/dev/null | sed -n 's/^Remv \([^ ]*\).*/\1/p' | tr '\n' ' ')"
		[[ -z "$removals" ]] || die "installing ${pkgs[*]} would remove: $removals; install Postfix yourself or remove those first"
		apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "${pkgs[@]}" >>"$log" 2>&1 || {
			tail -n 20 "$log" >&2
			die "apt-get install ${pkgs[*]} failed (log: $log)"
		}
	fi
	[[ -n "$(postfix_bin)" && -n "$(postconf_bin)" ]] || die "postfix is not installed"
	[[ -n "$(dnsmasq_bin)" ]] || die "dnsmasq is not installed"
	[[ -n "$(dovecot_bin)" ]] || die "dovecot is not installed"
	[[ -x /usr/lib/dovecot/lmtp ]] || die "dovecot's LMTP server is not installed (Debian dovecot-lmtpd)"
	[[ -n "$(sievec_bin)" ]] || die "dovecot's Sieve plugin is not installed (Debian dovecot-sieve)"
	getent passwd dovenull >/dev/null || die "there is no 'dovenull' user (the Debian dovecot-core package makes it)"
	getent passwd postfix >/dev/null || die "there is no 'postfix' user (the Debian package makes it)"
	getent group postdrop >/dev/null || die "there is no 'postdrop' group (the Debian package makes it)"

	if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
		say "installing aiosmtpd from PyPI"
		if ! python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore aiosmtpd >&2; then
			if [[ "$(command -v python3)" == /usr/bin/python3 && $EUID -eq 0 ]]; then
				say "pip failed; trying Debian's python3-aiosmtpd"
				DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-aiosmtpd >/dev/null 2>&1 || true
			fi
		fi
		python3 -c 'import aiosmtpd' >/dev/null 2>&1 || die "could not install the Python package aiosmtpd"
	fi
}

# ---------------------------------------------------------------------------------------------
# Helpers

# tcp_open PORT: is something accepting TCP connections on 127.0.0.1:PORT?
tcp_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# wait_tcp PORT WHAT LOG: wait (bounded) for PORT to accept connections, else fail with the log.
wait_tcp() {
	local port=$1 what=$2 log=$3 i
	for ((i = 0; i < WAIT_TRIES; i++)); do
		tcp_open "$port" && return 0
		sleep 0.2
	done
	say "$what did not open $HOST:$port within $((WAIT_TRIES / 5)) s; last lines of $log:"
	tail -n 30 "$log" >&2 2>/dev/null || true
	exit 1
}

# pid_alive PIDFILE PATTERN: prints the PID when the file names a live process whose command line
# contains PATTERN (so a recycled PID is not mistaken for ours).
pid_alive() {
	local file=$1 pattern=$2 pid
	[[ -s "$file" ]] || return 1
	pid="$(tr -dc '0-9' <"$file")"
	[[ -n "$pid" ]] && proc_live "$pid" || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern" || return 1
	echo "$pid"
}

# proc_live PID: is the process there and not a zombie? (Here PID 1 may reap orphans late.)
proc_live() {
	local stat
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	stat="${stat##*) }"
	[[ "${stat:0:1}" != Z ]]
}

# await_exit PID WHAT: wait (bounded) for a process asked to stop, then SIGKILL it.
await_exit() {
	local pid=$1 what=$2 i
	for ((i = 0; i < WAIT_TRIES; i++)); do
		proc_live "$pid" || break
		sleep 0.1
	done
	if proc_live "$pid"; then
		say "$what (pid $pid) did not stop; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	say "stopped $what (pid $pid)"
}

# stop_pid PIDFILE PATTERN WHAT: SIGTERM the recorded process, wait (bounded), then SIGKILL.
stop_pid() {
	local file=$1 pattern=$2 what=$3 pid
	if pid="$(pid_alive "$file" "$pattern")"; then
		kill -TERM "$pid" 2>/dev/null || true
		await_exit "$pid" "$what"
	fi
	rm -f "$file"
}

postfix_cmd() { "$(postfix_bin)" -c "$PF_CONF" "$@"; }

postfix_running() {
	[[ -f "$PF_CONF/main.cf" ]] || return 1
	postfix_cmd status >/dev/null 2>&1
}

postfix_pid() { { tr -dc '0-9' <"$PF_QUEUE/pid/master.pid"; } 2>/dev/null || true; }

aiosmtpd_pattern() { echo "--spool $AIO_SPOOL"; }
dnsmasq_pattern() { echo "--pid-file=$DNS_PID"; }

# The port a running component of ours listens on (empty when it is not running).
running_port() {
	local pid
	case "$1" in
	postfix) postfix_running && sed -n 's/^127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$PF_CONF/master.cf" | head -n 1 ;;
	aiosmtpd) pid="$(pid_alive "$AIO_PID" "$(aiosmtpd_pattern)")" &&
		tr '\0' ' ' <"/proc/$pid/cmdline" | sed -n 's/.* --port \([0-9]*\) .*/\1/p' ;;
	dnsmasq) pid="$(pid_alive "$DNS_PID" "$(dnsmasq_pattern)")" &&
		tr '\0' ' ' <"/proc/$pid/cmdline" | sed -n 's/.* --port=\([0-9]*\) .*/\1/p' ;;
	esac
	return 0
}

# ---------------------------------------------------------------------------------------------
# TLS: a CA and a leaf for localhost, 127.0.0.1 and mx.interop.test, made fresh at start-up.

make_tls() {
	local tmp
	tmp="$(mktemp -d "$DIR/tls.XXXXXX")"
	(
		cd "$tmp"
		umask 077
		openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout ca.key -out ca.pem -days 30 -subj "/CN=smtpcheck interop test CA" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" \
			-addext "subjectKeyIdentifier=hash" 2>/dev/null
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
		cat >server.ext <<-EOF
			basicConstraints=critical,CA:FALSE
			keyUsage=critical,digitalSignature,keyEncipherment
			extendedKeyUsage=serverAuth
			subjectAltName=DNS:localhost,DNS:$MX_HOST,IP:127.0.0.1,IP:$NO_IDLE_HOST
			subjectKeyIdentifier=hash
			authorityKeyIdentifier=keyid
		EOF
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
			-out server.crt -days 30 -extfile server.ext 2>/dev/null
		# The chain Postfix sends: leaf first, then the CA.
		cat server.crt ca.pem >server.pem
		# The usual self-signed server certificate: `openssl req -x509` without an extension
		# file, so OpenSSL 3 marks it basicConstraints CA:TRUE.
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout x509.key -out x509.pem -days 30 -subj "/CN=$X509_NAME" 2>/dev/null
		chmod 644 x509.pem
		chmod 644 ca.pem server.crt server.pem
		rm -f server.csr server.ext ca.srl
	) || {
		rm -rf "$tmp"
		die "openssl could not make the test certificates"
	}
	rm -rf "$TLS_DIR"
	mv "$tmp" "$TLS_DIR"
	chmod 755 "$TLS_DIR"
}

# ---------------------------------------------------------------------------------------------
# Postfix

# has_param NAME: does this Postfix version know the main.cf parameter?
has_param() { "$(postconf_bin)" -d "$1" 2>/dev/null | grep -q "^$1 ="; }

write_postfix_config() {
	local uid gid optional="" user
	# Mail is stored as nobody: virtual(8) wants a uid of at least virtual_minimum_uid (100).
	uid="$(id -u nobody)"
	gid="$(id -g nobody)"
	install -d -m 755 "$PF_CONF" "$PF_QUEUE" "$MAIL_BASE" "$MAIL_BASE/$DOMAIN"
	install -d -m 700 -o postfix -g postfix "$PF_DATA"
	for user in "${USERS[@]}" "${IMAP_USERS[@]}"; do
		install -d -m 700 -o "$uid" -g "$gid" "$MAIL_BASE/$DOMAIN/$user" \
			"$MAIL_BASE/$DOMAIN/$user/tmp" "$MAIL_BASE/$DOMAIN/$user/new" "$MAIL_BASE/$DOMAIN/$user/cur"
	done

	# Parameters that only some Postfix versions know.
	if has_param smtpd_forbid_bare_newline; then
		# Bare LF ends a line, so a client that sends "\n.\n" could smuggle a second message.
		optional+="smtpd_forbid_bare_newline = no"$'\n'
	fi
	if has_param smtpd_peername_lookup; then
		optional+="smtpd_peername_lookup = no"$'\n'
	fi
	# virtual(8) refuses to run with a mailbox limit below the message size limit (default 51200000).
	if ((SIZE_LIMIT > 51200000)); then
		optional+="virtual_mailbox_limit = $SIZE_LIMIT"$'\n'
	fi

	cat >"$PF_CONF/main.cf" <<-EOF
		# Generated by scripts/interop.sh: a private Postfix instance for smtpcheck's interop tests.
		compatibility_level = 3.6
		queue_directory = $PF_QUEUE
		data_directory = $PF_DATA
		mail_owner = postfix
		setgid_group = postdrop
		maillog_file = $PF_LOG
		maillog_file_prefixes = /var, /dev/stdout, $DIR
		inet_interfaces = 127.0.0.1
		inet_protocols = ipv4
		myhostname = $MX_HOST
		mydomain = $DOMAIN
		myorigin = \$myhostname
		mydestination =
		mynetworks =
		relay_domains =
		relayhost =
		alias_maps =
		alias_database =
		biff = no
		append_dot_mydomain = no
		smtp_dns_support_level = disabled
		smtp_host_lookup = native
		# Nothing leaves this instance: bounces and anything not for $DOMAIN fail at once.
		default_transport = error:5.7.1 the interop instance delivers nothing outside $DOMAIN
		relay_transport = error:5.7.1 the interop instance delivers nothing outside $DOMAIN
		smtpd_banner = \$myhostname ESMTP Postfix (smtpcheck interop)
		smtpd_helo_required = yes
		smtpd_relay_restrictions = reject_unauth_destination
		smtpd_recipient_restrictions =
		smtpd_reject_unlisted_recipient = yes
		smtpd_error_sleep_time = 0
		in_flow_delay = 0
		message_size_limit = $SIZE_LIMIT
		recipient_delimiter = +
		# Store messages as they were sent: no header rewriting, no dropped headers.
		local_header_rewrite_clients =
		message_drop_headers =
		virtual_mailbox_domains = $DOMAIN
		virtual_mailbox_maps = texthash:$PF_CONF/vmailbox
		virtual_mailbox_base = $MAIL_BASE
		virtual_uid_maps = static:$uid
		virtual_gid_maps = static:$gid
		# The IMAP mailboxes are Dovecot's: delivered over LMTP (its Sieve files marked mail).
		transport_maps = texthash:$PF_CONF/transport
		smtpd_tls_security_level = may
		smtpd_tls_cert_file = $TLS_DIR/server.pem
		smtpd_tls_key_file = $TLS_DIR/server.key
		smtpd_tls_session_cache_database =
		smtpd_tls_loglevel = 1
		smtpd_tls_received_header = yes
		smtp_tls_security_level = none
		$optional
	EOF

	: >"$PF_CONF/vmailbox.tmp"
	for user in "${USERS[@]}"; do
		printf '%s@%s %s/%s/\n' "$user" "$DOMAIN" "$DOMAIN" "$user" >>"$PF_CONF/vmailbox.tmp"
	done
	# The IMAP mailboxes: known recipients here, delivered by Dovecot (LMTP, then Sieve).
	: >"$PF_CONF/transport.tmp"
	for user in "${IMAP_USERS[@]}"; do
		printf '%s@%s %s/%s/\n' "$user" "$DOMAIN" "$DOMAIN" "$user" >>"$PF_CONF/vmailbox.tmp"
		printf '%s@%s lmtp:unix:%s\n' "$user" "$DOMAIN" "$DV_LMTP" >>"$PF_CONF/transport.tmp"
	done
	mv "$PF_CONF/vmailbox.tmp" "$PF_CONF/vmailbox"
	mv "$PF_CONF/transport.tmp" "$PF_CONF/transport"

	# No chroot anywhere (the queue directory has no copies of /etc files).
	cat >"$PF_CONF/master.cf" <<-EOF
		# Generated by scripts/interop.sh. service type private unpriv chroot wakeup maxproc command
		$HOST:$POSTFIX_PORT inet n - n - - smtpd
		$HOST:$POSTFIX_X509_PORT inet n - n - - smtpd
		  -o smtpd_tls_cert_file=$TLS_DIR/x509.pem
		  -o smtpd_tls_key_file=$TLS_DIR/x509.key
		$HOST:$POSTFIX_STARTTLS_PORT inet n - n - - smtpd -o smtpd_tls_security_level=encrypt
		$HOST:$POSTFIX_LIMIT_PORT inet n - n - - smtpd -o smtpd_recipient_limit=3
		$HOST:$SUBMISSION_PORT inet n - n - - smtpd
		  -o smtpd_tls_auth_only=yes
		  -o smtpd_sasl_auth_enable=yes
		  -o smtpd_sasl_type=dovecot
		  -o smtpd_sasl_path=$DS_SOCKET
		  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
		pickup     unix  n - n 60   1 pickup
		cleanup    unix  n - n -    0 cleanup
		qmgr       unix  n - n 300  1 qmgr
		tlsmgr     unix  - - n 1000? 1 tlsmgr
		rewrite    unix  - - n -    - trivial-rewrite
		bounce     unix  - - n -    0 bounce
		defer      unix  - - n -    0 bounce
		trace      unix  - - n -    0 bounce
		verify     unix  - - n -    1 verify
		flush      unix  n - n 1000? 0 flush
		proxymap   unix  - - n -    - proxymap
		proxywrite unix  - - n -    1 proxymap
		smtp       unix  - - n -    - smtp
		relay      unix  - - n -    - smtp
		showq      unix  n - n -    - showq
		error      unix  - - n -    - error
		retry      unix  - - n -    - error
		discard    unix  - - n -    - discard
		local      unix  - n n -    - local
		virtual    unix  - n n -    - virtual
		lmtp       unix  - - n -    - lmtp
		anvil      unix  - - n -    1 anvil
		scache     unix  - - n -    1 scache
		postlog    unix-dgram n - n - 1 postlogd
	EOF

	# Postfix waits (re-reading every 0.3 s) until a configuration file is older than about 2 s,
	# in case it is still being written: backdate what was just written.
	touch -d "@$(($(date +%s) - 10))" "$PF_CONF/main.cf" "$PF_CONF/master.cf" "$PF_CONF/vmailbox" "$PF_CONF/transport"
}

start_postfix() {
	if postfix_running; then
		say "postfix already running (pid $(postfix_pid))"
		return 0
	fi
	tcp_open "$POSTFIX_PORT" && die "port $HOST:$POSTFIX_PORT is already in use by another program (set SMTPCHECK_INTEROP_POSTFIX_PORT)"
	tcp_open "$POSTFIX_X509_PORT" && die "port $HOST:$POSTFIX_X509_PORT is already in use by another program (set SMTPCHECK_INTEROP_POSTFIX_X509_PORT)"
	tcp_open "$POSTFIX_STARTTLS_PORT" && die "port $HOST:$POSTFIX_STARTTLS_PORT is already in use by another program (set SMTPCHECK_INTEROP_POSTFIX_STARTTLS_PORT)"
	tcp_open "$POSTFIX_LIMIT_PORT" && die "port $HOST:$POSTFIX_LIMIT_PORT is already in use by another program (set SMTPCHECK_INTEROP_POSTFIX_LIMIT_PORT)"
	tcp_open "$SUBMISSION_PORT" && die "port $HOST:$SUBMISSION_PORT is already in use by another program (set SMTPCHECK_INTEROP_SUBMISSION_PORT)"
	write_postfix_config
	: >>"$PF_LOG"
	postfix_cmd check >>"$PF_LOG" 2>&1 || {
		tail -n 30 "$PF_LOG" >&2
		die "postfix check failed for $PF_CONF (log: $PF_LOG)"
	}
	postfix_cmd start >>"$PF_LOG" 2>&1 || {
		tail -n 30 "$PF_LOG" >&2
		die "postfix would not start (log: $PF_LOG)"
	}
	wait_tcp "$POSTFIX_PORT" "postfix" "$PF_LOG"
	wait_tcp "$POSTFIX_X509_PORT" "postfix (openssl req -x509 certificate)" "$PF_LOG"
	wait_tcp "$POSTFIX_STARTTLS_PORT" "postfix (STARTTLS required)" "$PF_LOG"
	wait_tcp "$POSTFIX_LIMIT_PORT" "postfix (recipient limit)" "$PF_LOG"
	wait_tcp "$SUBMISSION_PORT" "postfix (submission with Dovecot SASL)" "$PF_LOG"
	say "postfix started (pid $(postfix_pid)) on $HOST:$POSTFIX_PORT"
}

stop_postfix() {
	[[ -f "$PF_CONF/main.cf" ]] || return 0
	if postfix_running; then
		local pid i
		pid="$(postfix_pid)"
		postfix_cmd stop >>"$PF_LOG" 2>&1 || true
		for ((i = 0; i < WAIT_TRIES; i++)); do
			postfix_running || break
			sleep 0.2
		done
		postfix_running && die "postfix (pid $pid) did not stop (log: $PF_LOG)"
		# Its smtpd processes close the listening socket a moment after the master exits.
		local port
		port="$(sed -n 's/^127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$PF_CONF/master.cf" | head -n 1)"
		for ((i = 0; i < WAIT_TRIES; i++)); do
			if [[ -z "$port" ]] || ! tcp_open "$port"; then break; fi
			sleep 0.2
		done
		say "stopped postfix (pid $pid)"
	fi
}

# ---------------------------------------------------------------------------------------------
# aiosmtpd

start_aiosmtpd() {
	local pid python
	if pid="$(pid_alive "$AIO_PID" "$(aiosmtpd_pattern)")"; then
		say "aiosmtpd already running (pid $pid)"
		return 0
	fi
	tcp_open "$AIOSMTPD_PORT" && die "port $HOST:$AIOSMTPD_PORT is already in use by another program (set SMTPCHECK_INTEROP_AIOSMTPD_PORT)"
	python="$(python3 -c 'import sys; print(sys.executable)')"
	install -d -m 755 "$AIO_SPOOL"
	# setsid + nohup: not tied to this shell or its terminal; stdin closed.
	setsid nohup "$python" -u "$SCRIPT_DIR/interop_aiosmtpd.py" --port "$AIOSMTPD_PORT" \
		--spool "$AIO_SPOOL" --host "$HOST" </dev/null >>"$AIO_LOG" 2>&1 &
	echo $! >"$AIO_PID"
	wait_tcp "$AIOSMTPD_PORT" "aiosmtpd" "$AIO_LOG"
	pid="$(pid_alive "$AIO_PID" "$(aiosmtpd_pattern)")" ||
		die "aiosmtpd exited after start (log: $AIO_LOG)"
	say "aiosmtpd started (pid $pid) on $HOST:$AIOSMTPD_PORT"
}

stop_aiosmtpd() { stop_pid "$AIO_PID" "$(aiosmtpd_pattern)" aiosmtpd; }

# ---------------------------------------------------------------------------------------------
# dnsmasq

# dns_answers: does the server answer an MX query for the test domain with the MX host?
dns_answers() {
	python3 - "$DNS_PORT" "$DOMAIN" <<-'EOF' 2>/dev/null
		import socket, struct, sys
		port, name = int(sys.argv[1]), sys.argv[2]
		q = struct.pack(">HHHHHH", 0x1d1d, 0x0100, 1, 0, 0, 0)
		q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
		q += struct.pack(">HH", 15, 1)
		s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		s.settimeout(0.5)
		s.sendto(q, ("127.0.0.1", port))
		r = s.recv(4096)
		ok = r[:2] == q[:2] and (r[3] & 0xF) == 0 and struct.unpack(">H", r[6:8])[0] >= 1
		sys.exit(0 if ok else 1)
	EOF
}

start_dnsmasq() {
	local pid i
	if pid="$(pid_alive "$DNS_PID" "$(dnsmasq_pattern)")"; then
		say "dnsmasq already running (pid $pid)"
		return 0
	fi
	tcp_open "$DNS_PORT" && die "port $HOST:$DNS_PORT is already in use by another program (set SMTPCHECK_INTEROP_DNS_PORT)"
	rm -f "$DNS_PID"
	# --conf-file=/dev/null: not /etc/dnsmasq.conf; --no-resolv/--no-hosts: answers only what is
	# given here; --local: everything else under the test domain is NXDOMAIN; no DHCP.
	"$(dnsmasq_bin)" --conf-file=/dev/null --no-resolv --no-hosts --no-poll --no-negcache \
		--port="$DNS_PORT" --listen-address="$HOST" --bind-interfaces --interface=lo \
		--user=root --group=root \
		--pid-file="$DNS_PID" --log-facility="$DNS_LOG" --log-queries \
		--local="/$DOMAIN/" \
		--mx-host="$DOMAIN,$MX_HOST,10" \
		--host-record="$MX_HOST,127.0.0.1" \
		>>"$DNS_LOG" 2>&1 || {
		tail -n 20 "$DNS_LOG" >&2
		die "dnsmasq would not start (log: $DNS_LOG)"
	}
	wait_tcp "$DNS_PORT" "dnsmasq" "$DNS_LOG"
	for ((i = 0; i <= WAIT_TRIES; i++)); do
		dns_answers && break
		((i < WAIT_TRIES)) || {
			tail -n 20 "$DNS_LOG" >&2
			die "dnsmasq does not answer MX $DOMAIN on $HOST:$DNS_PORT (log: $DNS_LOG)"
		}
		sleep 0.2
	done
	pid="$(pid_alive "$DNS_PID" "$(dnsmasq_pattern)")" || die "dnsmasq exited after start (log: $DNS_LOG)"
	say "dnsmasq started (pid $pid) on $HOST:$DNS_PORT"
}

stop_dnsmasq() { stop_pid "$DNS_PID" "$(dnsmasq_pattern)" dnsmasq; }

# ---------------------------------------------------------------------------------------------
# Dovecot

dovecot_cmd() { "$(dovecot_bin)" -c "$DV_CONF" "$@"; }

dovecot_pid() { { tr -dc '0-9' <"$DV_DIR/run/master.pid"; } 2>/dev/null || true; }

dovecot_running() {
	local pid
	[[ -f "$DV_CONF" ]] || return 1
	pid="$(dovecot_pid)"
	[[ -n "$pid" ]] && proc_live "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DV_CONF"
}

write_dovecot_config() {
	local uid gid user
	uid="$(id -u nobody)"
	gid="$(id -g nobody)"
	install -d -m 755 "$DV_DIR" "$DV_DIR/run" "$DV_DIR/state" "$DV_DIR/sieve"
	: >"$DV_DIR/users.tmp"
	for user in "${IMAP_USERS[@]}"; do
		printf '%s@%s:{PLAIN}%s:%s:%s::%s/%s/%s::\n' "$user" "$DOMAIN" "$IMAP_PASSWORD" "$uid" "$gid" \
			"$MAIL_BASE" "$DOMAIN" "$user" >>"$DV_DIR/users.tmp"
	done
	chmod 640 "$DV_DIR/users.tmp"
	chgrp dovecot "$DV_DIR/users.tmp" 2>/dev/null || true
	mv "$DV_DIR/users.tmp" "$DV_DIR/users"
	# The test marker: a header field X-Smtpcheck-Test: junk, or mail for USER+junk@.
	cat >"$DV_SIEVE" <<-'EOF'
		require ["fileinto", "envelope", "subaddress"];
		if anyof (header :is "X-Smtpcheck-Test" "junk", envelope :detail "to" "junk") {
		  fileinto "Junk";
		  stop;
		}
	EOF
	local dh=""
	[[ -f /usr/share/dovecot/dh.pem ]] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
	cat >"$DV_CONF" <<-EOF
		# Generated by scripts/interop.sh: a private Dovecot for smtpcheck's --confirm tests.
		base_dir = $DV_DIR/run
		state_dir = $DV_DIR/state
		instance_name = smtpcheck-interop-$IMAP_PORT
		log_path = $DV_LOG
		protocols = imap lmtp
		listen = $HOST, $NO_IDLE_HOST
		hostname = imap.$DOMAIN
		postmaster_address = postmaster@$DOMAIN
		recipient_delimiter = +
		ssl = yes
		ssl_cert = <$TLS_DIR/server.pem
		ssl_key = <$TLS_DIR/server.key
		$dh
		disable_plaintext_auth = no
		auth_mechanisms = plain login xoauth2 oauthbearer
		# Failures answer at once, with no per-address penalty slowing the next logins from
		# loopback (tests fail on purpose: a wrong password, a refused token).
		auth_failure_delay = 0
		service anvil {
		  unix_listener anvil-auth-penalty {
		    mode = 0
		  }
		}
		passdb {
		  driver = passwd-file
		  mechanisms = plain login
		  args = scheme=PLAIN username_format=%u $DV_DIR/users
		}
		# Tokens, as for SMTP: the introspection endpoint knows IMAP_OAUTH2_TOKEN for $IMAP_OAUTH2_USER.
		passdb {
		  driver = oauth2
		  mechanisms = xoauth2 oauthbearer
		  args = $DS_DIR/oauth2.conf.ext
		}
		userdb {
		  driver = passwd-file
		  args = username_format=%u $DV_DIR/users
		}
		mail_location = maildir:~
		first_valid_uid = 1
		namespace inbox {
		  inbox = yes
		  mailbox Junk {
		    special_use = \\Junk
		    auto = create
		  }
		  mailbox Trash {
		    special_use = \\Trash
		  }
		}
		service imap-login {
		  inet_listener imap {
		    port = $IMAP_PORT
		  }
		  inet_listener imaps {
		    port = $IMAPS_PORT
		    ssl = yes
		  }
		}
		service imap {
		  process_limit = 64
		}
		# Postfix's lmtp client (user postfix) delivers the IMAP users' mail here.
		service lmtp {
		  unix_listener lmtp {
		    user = postfix
		    mode = 0600
		  }
		}
		protocol lmtp {
		  mail_plugins = \$mail_plugins sieve
		}
		plugin {
		  # The spam "filter": run before any user script, files marked mail into Junk.
		  sieve_before = $DV_SIEVE
		}
		# The same server without IDLE, for clients that must poll.
		local $NO_IDLE_HOST {
		  protocol imap {
		    imap_capability = IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE SORT UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 ESEARCH SEARCHRES LIST-STATUS MOVE SPECIAL-USE
		  }
		}
	EOF
}

start_dovecot() {
	if dovecot_running; then
		say "dovecot already running (pid $(dovecot_pid))"
		return 0
	fi
	tcp_open "$IMAP_PORT" && die "port $HOST:$IMAP_PORT is already in use by another program (set SMTPCHECK_INTEROP_IMAP_PORT)"
	tcp_open "$IMAPS_PORT" && die "port $HOST:$IMAPS_PORT is already in use by another program (set SMTPCHECK_INTEROP_IMAPS_PORT)"
	write_dovecot_config
	: >>"$DV_LOG"
	# Compiled now, as root: the delivering process (the mail user) cannot write next to it.
	"$(sievec_bin)" -c "$DV_CONF" "$DV_SIEVE" >>"$DV_LOG" 2>&1 || {
		tail -n 30 "$DV_LOG" >&2
		die "sievec could not compile $DV_SIEVE (log: $DV_LOG)"
	}
	dovecot_cmd >>"$DV_LOG" 2>&1 || {
		tail -n 30 "$DV_LOG" >&2
		die "dovecot would not start (log: $DV_LOG)"
	}
	wait_tcp "$IMAP_PORT" "dovecot" "$DV_LOG"
	wait_tcp "$IMAPS_PORT" "dovecot (imaps)" "$DV_LOG"
	local i
	for ((i = 0; i < WAIT_TRIES; i++)); do
		[[ -S "$DV_LMTP" ]] && break
		sleep 0.2
	done
	[[ -S "$DV_LMTP" ]] || die "dovecot made no LMTP socket $DV_LMTP (log: $DV_LOG)"
	say "dovecot started (pid $(dovecot_pid)) on $HOST:$IMAP_PORT, imaps $HOST:$IMAPS_PORT, LMTP $DV_LMTP (and $NO_IDLE_HOST without IDLE)"
}

stop_dovecot() {
	[[ -f "$DV_CONF" ]] || return 0
	if dovecot_running; then
		local pid
		pid="$(dovecot_pid)"
		dovecot_cmd stop >>"$DV_LOG" 2>&1 || true
		await_exit "$pid" dovecot
	fi
}

# ---------------------------------------------------------------------------------------------
# SASL for the submission listener: a second private Dovecot (auth only) and the
# token-introspection endpoint its oauth2 passdb asks.

introspect_pattern() { echo "--tokens $DS_TOKENS"; }

# write_sasl_tokens: fresh random tokens (hex, so no quoting anywhere), unless the endpoint is
# already running with some (a second `up` keeps them, as the state file does).
write_sasl_tokens() {
	[[ -s "$DS_TOKENS" ]] && pid_alive "$INTROSPECT_PID" "$(introspect_pattern)" >/dev/null && return 0
	install -d -m 755 "$DS_DIR"
	(
		umask 077
		printf '%s valid %s\n%s expired\n%s valid %s\n%s valid %s\n' \
			"$(openssl rand -hex 24)" "$SASL_USER" "$(openssl rand -hex 24)" \
			"$(openssl rand -hex 24)" "$SASL_OTHER_USER" \
			"$(openssl rand -hex 24)" "$IMAP_OAUTH2_USER" >"$DS_TOKENS.tmp"
	)
	mv "$DS_TOKENS.tmp" "$DS_TOKENS"
}

# sasl_token KIND [USER]: the token of that kind (and user) from the tokens file.
sasl_token() { awk -v k="$1" -v u="${2:-}" '$2 == k && (u == "" || $3 == u) { print $1; exit }' "$DS_TOKENS"; }

start_introspect() {
	local pid python
	if pid="$(pid_alive "$INTROSPECT_PID" "$(introspect_pattern)")"; then
		say "introspection endpoint already running (pid $pid)"
		return 0
	fi
	tcp_open "$INTROSPECT_PORT" && die "port $HOST:$INTROSPECT_PORT is already in use by another program (set SMTPCHECK_INTEROP_INTROSPECT_PORT)"
	write_sasl_tokens
	python="$(python3 -c 'import sys; print(sys.executable)')"
	setsid nohup "$python" -u "$SCRIPT_DIR/interop_introspect.py" --port "$INTROSPECT_PORT" \
		--tokens "$DS_TOKENS" --host "$HOST" </dev/null >>"$INTROSPECT_LOG" 2>&1 &
	echo $! >"$INTROSPECT_PID"
	wait_tcp "$INTROSPECT_PORT" "introspection endpoint" "$INTROSPECT_LOG"
	pid="$(pid_alive "$INTROSPECT_PID" "$(introspect_pattern)")" ||
		die "the introspection endpoint exited after start (log: $INTROSPECT_LOG)"
	say "introspection endpoint started (pid $pid) on $HOST:$INTROSPECT_PORT"
}

stop_introspect() { stop_pid "$INTROSPECT_PID" "$(introspect_pattern)" "introspection endpoint"; }

dovecot_sasl_cmd() { "$(dovecot_bin)" -c "$DS_CONF" "$@"; }

dovecot_sasl_pid() { { tr -dc '0-9' <"$DS_DIR/run/master.pid"; } 2>/dev/null || true; }

dovecot_sasl_running() {
	local pid
	[[ -f "$DS_CONF" ]] || return 1
	pid="$(dovecot_sasl_pid)"
	[[ -n "$pid" ]] && proc_live "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DS_CONF"
}

write_dovecot_sasl_config() {
	local hash
	install -d -m 755 "$DS_DIR" "$DS_DIR/run" "$DS_DIR/state"
	# Stored for SCRAM (salted, iterated): Dovecot checks PLAIN and LOGIN against it too.
	hash="$(doveadm pw -s SCRAM-SHA-256 -p "$SASL_PASSWORD" 2>/dev/null)" || hash=""
	[[ "$hash" == "{SCRAM-SHA-256}"* ]] || die "doveadm pw -s SCRAM-SHA-256 failed (is this Dovecot older than 2.3.10?)"
	printf '%s:%s::::::\n' "$SASL_USER" "$hash" >"$DS_DIR/users.tmp"
	chmod 640 "$DS_DIR/users.tmp"
	chgrp dovecot "$DS_DIR/users.tmp" 2>/dev/null || true
	mv "$DS_DIR/users.tmp" "$DS_DIR/users"
	cat >"$DS_DIR/oauth2.conf.ext" <<-EOF
		# Generated by scripts/interop.sh: the oauth2 passdb asks the loopback introspection endpoint.
		introspection_mode = post
		introspection_url = http://$HOST:$INTROSPECT_PORT/introspect
		force_introspection = yes
		username_attribute = username
		active_attribute = active
		active_value = true
		timeout_msecs = 5000
	EOF
	cat >"$DS_CONF" <<-EOF
		# Generated by scripts/interop.sh: a private Dovecot checking the AUTH of the interop
		# Postfix's submission listener (no mail service: protocols = none).
		base_dir = $DS_DIR/run
		state_dir = $DS_DIR/state
		instance_name = smtpcheck-interop-sasl-$SUBMISSION_PORT
		log_path = $DS_LOG
		protocols = none
		listen = $HOST
		ssl = no
		disable_plaintext_auth = no
		auth_mechanisms = plain login scram-sha-256 xoauth2 oauthbearer
		# Say why a login failed (never the password: auth_verbose_passwords stays no).
		auth_verbose = yes
		# Failures answer at once: no delay, no growing per-address penalty (tests fail on purpose).
		auth_failure_delay = 0
		service anvil {
		  unix_listener anvil-auth-penalty {
		    mode = 0
		  }
		}
		passdb {
		  driver = passwd-file
		  mechanisms = plain login scram-sha-256
		  args = username_format=%u $DS_DIR/users
		}
		passdb {
		  driver = oauth2
		  mechanisms = xoauth2 oauthbearer
		  args = $DS_DIR/oauth2.conf.ext
		}
		userdb {
		  driver = static
		  args = uid=nobody gid=nogroup home=/nonexistent
		}
		service auth {
		  unix_listener auth-client {
		    mode = 0660
		    user = postfix
		    group = postfix
		  }
		}
	EOF
}

start_dovecot_sasl() {
	local i
	if dovecot_sasl_running; then
		say "dovecot (SASL) already running (pid $(dovecot_sasl_pid))"
		return 0
	fi
	write_dovecot_sasl_config
	: >>"$DS_LOG"
	dovecot_sasl_cmd >>"$DS_LOG" 2>&1 || {
		tail -n 30 "$DS_LOG" >&2
		die "dovecot (SASL) would not start (log: $DS_LOG)"
	}
	for ((i = 0; i < WAIT_TRIES; i++)); do
		[[ -S "$DS_SOCKET" ]] && break
		sleep 0.2
	done
	[[ -S "$DS_SOCKET" ]] || {
		tail -n 30 "$DS_LOG" >&2
		die "dovecot (SASL) made no auth socket $DS_SOCKET (log: $DS_LOG)"
	}
	say "dovecot (SASL) started (pid $(dovecot_sasl_pid)), auth socket $DS_SOCKET"
}

stop_dovecot_sasl() {
	[[ -f "$DS_CONF" ]] || return 0
	if dovecot_sasl_running; then
		local pid
		pid="$(dovecot_sasl_pid)"
		dovecot_sasl_cmd stop >>"$DS_LOG" 2>&1 || true
		await_exit "$pid" "dovecot (SASL)"
	fi
}

# check_submission_listener: a Postfix of ours started by an older version of this script has no
# submission listener: say so rather than write a state file that names it.
check_submission_listener() {
	tcp_open "$SUBMISSION_PORT" ||
		die "postfix is running without the submission listener on $HOST:$SUBMISSION_PORT; run '$0 down' first"
}

sasl_running() {
	dovecot_sasl_running && pid_alive "$INTROSPECT_PID" "$(introspect_pattern)" >/dev/null
}

# write_sasl_env: the SASL keys of the state file (appended by write_env).
write_sasl_env() {
	cat <<-EOF
		SUBMISSION_PORT=$SUBMISSION_PORT
		SASL_USER=$SASL_USER
		SASL_PASSWORD=$SASL_PASSWORD
		INTROSPECT_PORT=$INTROSPECT_PORT
		OAUTH2_TOKEN=$(sasl_token valid "$SASL_USER")
		OAUTH2_EXPIRED_TOKEN=$(sasl_token expired)
		OAUTH2_OTHER_TOKEN=$(sasl_token valid "$SASL_OTHER_USER")
		SASL_OTHER_USER=$SASL_OTHER_USER
		DOVECOT_SASL_LOG=$DS_LOG
	EOF
}

# ---------------------------------------------------------------------------------------------
# Commands

write_env() {
	cat >"$ENV_FILE.tmp" <<-EOF
		# Written by scripts/interop.sh up; removed by down. KEY=value, fit for 'source'.
		INTEROP_DIR=$DIR
		DOMAIN=$DOMAIN
		USERS=$(printf '%s@'"$DOMAIN"',' "${USERS[@]}" | sed 's/,$//')
		HOST=$HOST
		POSTFIX_PORT=$POSTFIX_PORT
		POSTFIX_STARTTLS_PORT=$POSTFIX_STARTTLS_PORT
		POSTFIX_LIMIT_PORT=$POSTFIX_LIMIT_PORT
		POSTFIX_HOSTNAME=$MX_HOST
		POSTFIX_SIZE_LIMIT=$SIZE_LIMIT
		POSTFIX_LOG=$PF_LOG
		POSTFIX_CONFIG=$PF_CONF
		MAIL_BASE=$MAIL_BASE
		MAILDIR=$MAIL_BASE/$DOMAIN/user
		OTHER_MAILDIR=$MAIL_BASE/$DOMAIN/other
		AIOSMTPD_PORT=$AIOSMTPD_PORT
		AIOSMTPD_SPOOL=$AIO_SPOOL
		AIOSMTPD_LOG=$AIO_LOG
		DNS_PORT=$DNS_PORT
		MX_HOST=$MX_HOST
		CA_FILE=$TLS_DIR/ca.pem
		POSTFIX_X509_PORT=$POSTFIX_X509_PORT
		X509_CERT=$TLS_DIR/x509.pem
		X509_NAME=$X509_NAME
		IMAP_PORT=$IMAP_PORT
		IMAPS_PORT=$IMAPS_PORT
		IMAP_NO_IDLE_HOST=$NO_IDLE_HOST
		IMAP_USERS=$(printf '%s@'"$DOMAIN"',' "${IMAP_USERS[@]}" | sed 's/,$//')
		IMAP_PASSWORD=$IMAP_PASSWORD
		IMAP_MAIL_BASE=$MAIL_BASE/$DOMAIN
		IMAP_OAUTH2_USER=$IMAP_OAUTH2_USER
		IMAP_OAUTH2_TOKEN=$(sasl_token valid "$IMAP_OAUTH2_USER")
	EOF
	write_sasl_env >>"$ENV_FILE.tmp"
	mv "$ENV_FILE.tmp" "$ENV_FILE"
}

# check_ports: a component already running on another port than asked for now is an error
# (the state file would lie); prints nothing and succeeds otherwise.
check_ports() {
	local what want have bad=""
	for what in postfix:$POSTFIX_PORT aiosmtpd:$AIOSMTPD_PORT dnsmasq:$DNS_PORT; do
		want="${what#*:}"
		have="$(running_port "${what%%:*}")"
		[[ -z "$have" || "$have" == "$want" ]] || bad+=" ${what%%:*} on $have (asked for $want)"
	done
	[[ -z "$bad" ]] || die "already running with other ports:$bad; run '$0 down' first"
	local limit
	if postfix_running; then
		limit="$(sed -n 's/^message_size_limit = //p' "$PF_CONF/main.cf")"
		[[ -z "$limit" || "$limit" == "$SIZE_LIMIT" ]] ||
			die "postfix already running with SIZE limit $limit (asked for $SIZE_LIMIT); run '$0 down' first"
	fi
	return 0
}

all_running() {
	postfix_running &&
		pid_alive "$AIO_PID" "$(aiosmtpd_pattern)" >/dev/null &&
		pid_alive "$DNS_PID" "$(dnsmasq_pattern)" >/dev/null &&
		dovecot_running &&
		sasl_running
}

cmd_up() {
	check_settings
	check_ports
	if [[ -f "$ENV_FILE" ]] && all_running; then
		say "already up ($ENV_FILE)"
		return 0
	fi
	[[ $EUID -eq 0 ]] || die "run as root: Postfix's master process needs it"
	install -d -m 755 "$DIR"
	install_missing
	rm -f "$ENV_FILE"
	if ! postfix_running; then
		make_tls
	fi
	start_introspect
	start_dovecot_sasl
	start_postfix
	check_submission_listener
	start_aiosmtpd
	start_dnsmasq
	start_dovecot
	write_env
	say "up: state in $ENV_FILE"
}

cmd_down() {
	check_settings
	# dnsmasq and aiosmtpd are found by their PID files (checked against their command lines),
	# Postfix by its own configuration directory: nothing else is touched.
	stop_dovecot
	stop_dnsmasq
	stop_aiosmtpd
	stop_postfix
	stop_dovecot_sasl
	stop_introspect
	rm -f "$ENV_FILE" "$DS_TOKENS"
	say "down"
}

cmd_status() {
	check_settings
	local rc=0 pid
	if postfix_running; then
		echo "postfix:  running (pid $(postfix_pid)) on $HOST:$(running_port postfix), config $PF_CONF, log $PF_LOG"
	else
		echo "postfix:  stopped"
		rc=3
	fi
	if pid="$(pid_alive "$AIO_PID" "$(aiosmtpd_pattern)")"; then
		echo "aiosmtpd: running (pid $pid) on $HOST:$(running_port aiosmtpd), spool $AIO_SPOOL"
	else
		echo "aiosmtpd: stopped"
		rc=3
	fi
	if pid="$(pid_alive "$DNS_PID" "$(dnsmasq_pattern)")"; then
		echo "dnsmasq:  running (pid $pid) on $HOST:$(running_port dnsmasq) (udp+tcp), zone $DOMAIN"
	else
		echo "dnsmasq:  stopped"
		rc=3
	fi
	if dovecot_running; then
		echo "dovecot:  running (pid $(dovecot_pid)) on $HOST:$IMAP_PORT (IMAP, STARTTLS), $HOST:$IMAPS_PORT (imaps), LMTP $DV_LMTP, config $DV_CONF, log $DV_LOG"
	else
		echo "dovecot:  stopped"
		rc=3
	fi
	if dovecot_sasl_running; then
		echo "sasl:     dovecot (pid $(dovecot_sasl_pid)) for $HOST:$SUBMISSION_PORT, config $DS_CONF, log $DS_LOG"
	else
		echo "sasl:     dovecot stopped"
		rc=3
	fi
	if pid="$(pid_alive "$INTROSPECT_PID" "$(introspect_pattern)")"; then
		echo "oauth2:   introspection endpoint (pid $pid) on $HOST:$INTROSPECT_PORT, log $INTROSPECT_LOG"
	else
		echo "oauth2:   introspection endpoint stopped"
		rc=3
	fi
	if [[ -f "$ENV_FILE" ]]; then
		echo "state:    $ENV_FILE"
	else
		echo "state:    none (not up)"
		rc=3
	fi
	return "$rc"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
	echo "usage: $0 up|down|status" >&2
	exit 2
	;;
esac
