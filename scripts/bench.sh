#!/usr/bin/env bash
# Performance benchmarks for smtpcheck (issue 8), on loopback only:
#
#   1. smtpcheck, curl and swaks delivering the same files to a private Postfix (interleaved:
#      several rounds of one hyperfine invocation with all three commands): examples/report.eml
#      and a generated 2 MB multipart message. Per case: each tool's median wall time and peak RSS
#      (/usr/bin/time -f %M, median over several runs) and the ratios smtpcheck/curl and
#      smtpcheck/swaks. TLS off for all three, so they do the same work.
#   2. The floor: the same session repeated inside one running process (examples/bench_floor.rs),
#      and `smtpcheck --version` (process start alone).
#   3. A 100 MB message to Postfix's smtp-sink (a fast sink that discards): smtpcheck and curl.
#   4. Concurrency across 50 recipient domains (examples/bench_domains.rs): delayed loopback sinks
#      behind an in-process DNS zone.
#   5. The codec micro-benchmarks (benches/codec.rs): DATA encoding and reply parsing.
#
#   scripts/bench.sh          everything (a few minutes after the build)
#   scripts/bench.sh quick    fewer runs (a smoke test of the script)
#
# Needs root the first time (apt-get; Postfix's master runs as root). Installs what is missing
# from Debian: hyperfine, swaks, curl, time (and, through scripts/interop.sh, postfix, dnsmasq,
# openssl, aiosmtpd). The Postfix used is a separate instance of scripts/interop.sh (its own state
# directory and ports, SIZE limit raised for the 2 MB message), so the interop tests' instance on
# 2525 is left alone; it is stopped at the end when this script started it.
#
# Environment:
#   SMTPCHECK_BENCH_DIR      state and generated files (default /tmp/smtpcheck-bench)
#   SMTPCHECK_BENCH_PORT     first of four consecutive loopback ports (default 2535: Postfix,
#                            aiosmtpd, smtp-sink; DNS on port+2828)
#   SMTPCHECK_BENCH_RUNS     timed runs per tool for the report case (default 30)
#   SMTPCHECK_BENCH_KEEP_UP  1: leave the benchmark Postfix running at the end
#
# Heavy work (the builds) runs under `nice -n 10`; the measurements do not. Check `uptime` first:
# on a loaded machine the figures are noisy.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly DIR="${SMTPCHECK_BENCH_DIR:-/tmp/smtpcheck-bench}"
readonly PORT="${SMTPCHECK_BENCH_PORT:-2535}"
readonly PF_PORT="$PORT"
readonly AIO_PORT="$((PORT + 1))"
readonly SINK_PORT="$((PORT + 2))"
readonly DNS_PORT="$((PORT + 2828))"
readonly SIZE_LIMIT=10485760
readonly MODE="${1:-full}"
readonly FROM=reports@bi.example.com
readonly RCPT=user@interop.test
readonly HOST=127.0.0.1

case "$MODE" in
full)
	RUNS="${SMTPCHECK_BENCH_RUNS:-30}"
	ROUNDS=5
	RSS_RUNS=7
	FLOOR_RUNS=50
	BIG_RUNS=10
	DOMAIN_RUNS=3
	;;
quick)
	RUNS=5
	ROUNDS=1
	RSS_RUNS=1
	FLOOR_RUNS=5
	BIG_RUNS=1
	DOMAIN_RUNS=1
	;;
*)
	echo "usage: $0 [full|quick]" >&2
	exit 2
	;;
esac
if ! [[ "$RUNS" =~ ^[0-9]+$ ]] || ((RUNS < ROUNDS || RUNS > 1000)); then
	echo "bench: SMTPCHECK_BENCH_RUNS must be $ROUNDS-1000" >&2
	exit 2
fi
if ! [[ "$PORT" =~ ^[0-9]+$ ]] || ((PORT < 1024 || PORT + 2828 > 65535)); then
	echo "bench: SMTPCHECK_BENCH_PORT must be 1024-62707" >&2
	exit 2
fi

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
	printf 'bench: error: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------------------------------------
# Set-up

install_missing() {
	local pkgs=()
	command -v hyperfine >/dev/null 2>&1 || pkgs+=(hyperfine)
	command -v swaks >/dev/null 2>&1 || pkgs+=(swaks)
	command -v curl >/dev/null 2>&1 || pkgs+=(curl)
	[[ -x /usr/bin/time ]] || pkgs+=(time)
	command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
	if ((${#pkgs[@]})); then
		[[ $EUID -eq 0 ]] || die "missing ${pkgs[*]}: run as root so they can be installed"
		say "installing Debian packages: ${pkgs[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
	fi
	command -v cargo >/dev/null 2>&1 || die "cargo is not installed (see README: Rust 1.88 or newer)"
}

# The benchmark instance of scripts/interop.sh: every port of its own (PORT to PORT + 9, and the DNS
# port), so that it can run beside the test instance.
interop() {
	SMTPCHECK_INTEROP_DIR="$DIR/interop" \
		SMTPCHECK_INTEROP_POSTFIX_PORT="$PF_PORT" \
		SMTPCHECK_INTEROP_AIOSMTPD_PORT="$AIO_PORT" \
		SMTPCHECK_INTEROP_DNS_PORT="$DNS_PORT" \
		SMTPCHECK_INTEROP_POSTFIX_X509_PORT="$((PORT + 3))" \
		SMTPCHECK_INTEROP_POSTFIX_STARTTLS_PORT="$((PORT + 4))" \
		SMTPCHECK_INTEROP_POSTFIX_LIMIT_PORT="$((PORT + 5))" \
		SMTPCHECK_INTEROP_SUBMISSION_PORT="$((PORT + 6))" \
		SMTPCHECK_INTEROP_INTROSPECT_PORT="$((PORT + 7))" \
		SMTPCHECK_INTEROP_IMAP_PORT="$((PORT + 8))" \
		SMTPCHECK_INTEROP_IMAPS_PORT="$((PORT + 9))" \
		SMTPCHECK_INTEROP_SIZE_LIMIT="$SIZE_LIMIT" \
		"$ROOT/scripts/interop.sh" "$@"
}

STARTED_INTEROP=0
SINK_PID=""
cleanup() {
	if [[ -n "$SINK_PID" ]] && kill -0 "$SINK_PID" 2>/dev/null; then
		kill "$SINK_PID" 2>/dev/null || true
		wait "$SINK_PID" 2>/dev/null || true
	fi
	if ((STARTED_INTEROP)) && [[ "${SMTPCHECK_BENCH_KEEP_UP:-0}" != 1 ]]; then
		interop down >/dev/null 2>&1 || true
	fi
}
trap cleanup EXIT

# gen_message PATH SIZE: a multipart message (a short text part with a dot-line, a base64
# attachment) of about SIZE bytes, CRLF line endings; deterministic content.
gen_message() {
	python3 - "$1" "$2" <<-'EOF'
		import base64, random, sys
		path, size = sys.argv[1], int(sys.argv[2])
		rnd = random.Random(size)
		head = (
		    "From: Reports <reports@bi.example.com>\r\nTo: user@interop.test\r\n"
		    "Subject: Monthly report with attachment\r\nDate: Sat, 01 Mar 2025 12:00:00 +0000\r\n"
		    f"Message-ID: <bench-{size}@bi.example.com>\r\nMIME-Version: 1.0\r\n"
		    'Content-Type: multipart/mixed; boundary="=_bench"\r\n\r\n'
		    "--=_bench\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
		    "The monthly report is attached.\r\n.\r\nRegards\r\n"
		    '--=_bench\r\nContent-Type: application/pdf; name="report.pdf"\r\n'
		    "Content-Transfer-Encoding: base64\r\n"
		    'Content-Disposition: attachment; filename="report.pdf"\r\n\r\n'
		)
		tail = "--=_bench--\r\n"
		raw = rnd.randbytes((size - len(head) - len(tail)) // 78 * 57)
		b = base64.b64encode(raw)
		with open(path + ".tmp", "wb") as f:
		    f.write(head.encode())
		    for i in range(0, len(b), 76 * 4096):
		        block = b[i : i + 76 * 4096]
		        f.write(b"".join(block[j : j + 76] + b"\r\n" for j in range(0, len(block), 76)))
		    f.write(tail.encode())
	EOF
	mv "$1.tmp" "$1"
}

# Wait (bounded) until the benchmark Postfix has delivered everything, then empty the mailbox, so
# one case's deliveries do not run during the next one's measurements.
drain_postfix() {
	local queue="$DIR/interop/postfix/spool" i n
	for ((i = 0; i < 150; i++)); do
		n="$(find "$queue/incoming" "$queue/active" "$queue/maildrop" -type f 2>/dev/null | wc -l)"
		((n == 0)) && break
		sleep 0.2
	done
	find "$DIR/interop/mail/interop.test" -path '*/new/*' -type f -delete 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# Measuring

# analyse KIND ARGS...: the tables, from the JSON and RSS files in $OUT (see the script below).
analyse() { python3 "$OUT/analyse.py" "$@"; }

write_analyser() {
	cat >"$OUT/analyse.py" <<-'EOF'
		import glob, json, re, statistics, sys

		def median_ms(name, tool):
		    times = []
		    for f in sorted(glob.glob(f"{OUT}/{name}.round*.json")):
		        for r in json.load(open(f))["results"]:
		            if r["command"] == tool:
		                times += r["times"]
		    return (statistics.median(times) * 1e3 if times else float("nan")), len(times)

		def median_rss(name, tool):
		    kb = [int(l.split()[1]) for l in open(f"{OUT}/{name}.rss") if l.split()[0] == tool]
		    return statistics.median(kb) / 1024 if kb else float("nan")

		def ok(b):
		    return "met" if b else "NOT met"

		def table(name, tools):
		    res = {}
		    print(f"  {'tool':<13} {'median wall':>12} {'peak RSS':>10}   runs")
		    for tool in tools:
		        ms, n = median_ms(name, tool)
		        res[tool] = (ms, median_rss(name, tool))
		        if n:
		            print(f"  {tool:<13} {ms:9.2f} ms {res[tool][1]:6.1f} MiB   {n}")
		    return res

		kind, OUT = sys.argv[1], sys.argv[2]
		if kind == "case":
		    name, size = sys.argv[3], int(sys.argv[4])
		    floor_text = open(f"{OUT}/{name}.floor").read()
		    floor = statistics.median(
		        float(t)
		        for line in floor_text.splitlines() if "sessions (ms):" in line
		        for t in line.split(":", 1)[1].split()
		    )
		    print(f"-- {name}.eml ({size} bytes) to Postfix, TLS off")
		    r = table(name, ("smtpcheck", "curl", "swaks", "smtpcheck-tls"))
		    (s, srss), (c, crss), (w, wrss) = r["smtpcheck"], r["curl"], r["swaks"]
		    target = 0.6 if name == "report" else 1.0
		    print(f"  smtpcheck/curl:  wall {s / c:.2f} (target <= {target}: {ok(s / c <= target)}), "
		          f"peak RSS {srss / crss:.2f} (target <= 0.6: {ok(srss / crss <= 0.6)})")
		    print(f"  smtpcheck/swaks: wall {s / w:.2f}, peak RSS {srss / wrss:.2f}")
		    print(f"  floor (the same session inside a running process): {floor:.2f} ms; "
		          f"smtpcheck - floor = {s - floor:.2f} ms (target <= 3: {ok(s - floor <= 3)})")
		    steps = [l for l in floor_text.splitlines() if "median per step" in l][-1]
		    print("  floor" + steps.strip().removeprefix("median") + " (last round)")
		elif kind == "version":
		    s, _ = median_ms("version", "smtpcheck")
		    c, _ = median_ms("version", "curl")
		    print(f"-- start-up: smtpcheck --version {s:.2f} ms (target < 3: {ok(s < 3)}); "
		          f"curl --version {c:.2f} ms")
		elif kind == "big":
		    size = int(sys.argv[3])
		    print(f"-- message-100mb.eml ({size} bytes) to smtp-sink, TLS off")
		    r = table("big", ("smtpcheck", "curl"))
		    ratio = r["smtpcheck"][0] / r["curl"][0]
		    print(f"  smtpcheck/curl: wall {ratio:.2f} (target <= 1.2: {ok(ratio <= 1.2)}); "
		          f"smtpcheck peak RSS {r['smtpcheck'][1]:.1f} MiB")
		print()
	EOF
}

# round NAME R RUNS LABEL=COMMAND...: round R: one hyperfine invocation running each command RUNS
# times (after a warm-up run), JSON in $OUT/NAME.roundR.json.
round() {
	local name=$1 r=$2 runs=$3 spec args=()
	shift 3
	for spec in "$@"; do args+=(-n "${spec%%=*}" "${spec#*=}"); done
	hyperfine -N --style none --warmup 1 --runs "$runs" \
		--export-json "$OUT/$name.round$r.json" "${args[@]}" >/dev/null
}

# interleaved NAME RUNS ROUNDS LABEL=COMMAND...: RUNS timed runs of each command in ROUNDS rounds.
interleaved() {
	local name=$1 runs=$2 rounds=$3 r
	shift 3
	for ((r = 1; r <= rounds; r++)); do
		round "$name" "$r" "$((runs / rounds))" "$@"
	done
}

# peak_rss NAME RUNS LABEL=COMMAND...: the peak RSS (KiB) of each command, RUNS times, interleaved,
# into $OUT/NAME.rss as "label kib" lines.
peak_rss() {
	local name=$1 runs=$2 r spec
	shift 2
	: >"$OUT/$name.rss"
	for ((r = 0; r < runs; r++)); do
		for spec in "$@"; do
			# shellcheck disable=SC2086 # the command is split into words on purpose
			/usr/bin/time -f "%M" -o "$OUT/time.out" ${spec#*=} >/dev/null 2>&1 ||
				die "failed: ${spec#*=}"
			echo "${spec%%=*} $(tail -n 1 "$OUT/time.out")" >>"$OUT/$name.rss"
		done
	done
}

# ---------------------------------------------------------------------------------------------
# Main

install_missing
cd "$ROOT"
say "building smtpcheck (release) and the benchmark examples"
nice -n 10 cargo build --release --quiet --bin smtpcheck --example bench_floor --example bench_domains
nice -n 10 cargo bench --quiet --bench codec --no-run
TARGET="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
readonly BIN="$TARGET/release/smtpcheck"
readonly EXAMPLES="$TARGET/release/examples"

if ! interop status >/dev/null 2>&1; then
	STARTED_INTEROP=1
fi
interop up >&2

OUT="$DIR/results"
FILES="$DIR/files"
install -d "$OUT" "$FILES"
rm -f "$OUT"/*.json "$OUT"/*.rss "$OUT"/*.floor
write_analyser
cp examples/report.eml "$FILES/report.eml"
[[ -s "$FILES/multipart-2mb.eml" ]] || gen_message "$FILES/multipart-2mb.eml" 2097152
[[ -s "$FILES/message-100mb.eml" ]] || gen_message "$FILES/message-100mb.eml" 100000000

SMTP_SINK="$(command -v smtp-sink 2>/dev/null || echo /usr/sbin/smtp-sink)"
[[ -x "$SMTP_SINK" ]] || die "smtp-sink (from the postfix package) is not installed"
(exec 3<>"/dev/tcp/$HOST/$SINK_PORT") 2>/dev/null && die "port $HOST:$SINK_PORT is already in use"
"$SMTP_SINK" -u nobody "$HOST:$SINK_PORT" 100 >/dev/null 2>&1 &
SINK_PID=$!
for ((i = 0; i < 50; i++)); do
	(exec 3<>"/dev/tcp/$HOST/$SINK_PORT") 2>/dev/null && break
	sleep 0.1
done

echo "== smtpcheck benchmarks ($(date -u +%Y-%m-%dT%H:%MZ), mode $MODE)"
echo "machine: $(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr)"
echo "load before: $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "versions: $("$BIN" --version); $(curl --version | head -n 1 | cut -d ' ' -f 1-2); swaks $(swaks --version 2>&1 | grep -o '[0-9][0-9.]*' | head -n 1); postfix $(postconf -d mail_version 2>/dev/null | cut -d ' ' -f 3)"
echo

# --- 1 and 2: the report and the 2 MB message against Postfix, with the floor -------------------
for case in report multipart-2mb; do
	file="$FILES/$case.eml"
	runs=$RUNS
	[[ $case == report ]] || runs=$((RUNS / 2 > ROUNDS ? RUNS / 2 : ROUNDS))
	s="smtpcheck=$BIN send --eml $file --to $RCPT --from $FROM --smart-host $HOST:$PF_PORT --tls off"
	c="curl=curl -sS smtp://$HOST:$PF_PORT --mail-from $FROM --mail-rcpt $RCPT -T $file"
	w="swaks=swaks --server $HOST:$PF_PORT --from $FROM --to $RCPT --data @$file"
	# For reference: the default --tls opportunistic (STARTTLS, trust roots loaded, handshake).
	t="smtpcheck-tls=$BIN send --eml $file --to $RCPT --from $FROM --smart-host $HOST:$PF_PORT"
	extra=()
	[[ $case != report ]] || extra=("$t")
	drain_postfix
	# The floor is measured in each round too, so that it meets the same server state as the tools.
	: >"$OUT/$case.floor"
	for ((r = 1; r <= ROUNDS; r++)); do
		round "$case" "$r" "$((runs / ROUNDS))" "$s" "$c" "$w" "${extra[@]}"
		"$EXAMPLES/bench_floor" "$HOST:$PF_PORT" "$file" "$RCPT" "$((FLOOR_RUNS / ROUNDS))" >>"$OUT/$case.floor"
	done
	peak_rss "$case" "$RSS_RUNS" "$s" "$c" "$w" "${extra[@]}"
	analyse case "$OUT" "$case" "$(stat -c %s "$file")"
done

# Start-up alone.
interleaved version "$RUNS" "$ROUNDS" "smtpcheck=$BIN --version" "curl=curl --version"
analyse version "$OUT"

# --- 3: 100 MB to smtp-sink -------------------------------------------------------------------
file="$FILES/message-100mb.eml"
s="smtpcheck=$BIN send --eml $file --to $RCPT --from $FROM --smart-host $HOST:$SINK_PORT --tls off --max-size 200MB"
c="curl=curl -sS smtp://$HOST:$SINK_PORT --mail-from $FROM --mail-rcpt $RCPT -T $file"
interleaved big "$BIG_RUNS" "$ROUNDS" "$s" "$c"
peak_rss big "$((RSS_RUNS < 3 ? RSS_RUNS : 3))" "$s" "$c"
analyse big "$OUT" "$(stat -c %s "$file")"

# --- 4: concurrency across domains -------------------------------------------------------------
echo "-- $("$EXAMPLES/bench_domains" "$BIN" "$FILES/report.eml" "$FILES/multipart-2mb.eml" 50 100 "$DOMAIN_RUNS")"
echo

# --- 5: codec micro-benchmarks ----------------------------------------------------------------
echo "-- $(cargo bench --quiet --bench codec 2>/dev/null)"
echo
echo "load after: $(cut -d ' ' -f 1-3 /proc/loadavg)"
echo "raw results: $OUT"
