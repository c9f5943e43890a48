#!/usr/bin/env bash
# Smoke-test outgoing mail and act on smtpcheck's exit code (the codes are listed in README,
# "Exit codes", and at the end of `smtpcheck send --help`).
#
# Usage: examples/exit-codes.sh RECIPIENT [smtpcheck send options...]
#
# Everything else comes from the options, a profile or SMTPCHECK_* variables, e.g.
#   SMTPCHECK_SMART_HOST=relay.example.com:587 SMTPCHECK_FROM=ci@example.com \
#     examples/exit-codes.sh ops@example.com --tls required
# Set SMTPCHECK to the smtpcheck binary to use (default: the one on PATH).
# The script exits with smtpcheck's code, so a CI job fails whenever the check does.
set -u

smtpcheck=${SMTPCHECK:-smtpcheck}
if [ "$#" -lt 1 ]; then
    echo "usage: $0 RECIPIENT [smtpcheck send options...]" >&2
    exit 64
fi
recipient=$1
shift

# --quiet: only the verdict line; the exit code says the rest.
"$smtpcheck" send --to "$recipient" --quiet "$@"
code=$?

# Temporary failures (5, 8 and 20 to 35) are worth retrying later; the others need a fix.
case "$code" in
    0)
        echo "OK: the server accepted the message for $recipient"
        ;;
    1)
        echo "PARTIAL: the server accepted some recipients and refused others"
        ;;
    2 | 3)
        echo "CONFIGURATION: fix the options, the message or the profile; nothing was sent"
        ;;
    4)
        echo "DNS: no mail host found for the recipient's domain (no such domain, null MX, bad MX data)"
        ;;
    5)
        echo "NETWORK (temporary): could not connect (firewall, wrong host or port, server down); try again later"
        ;;
    6 | 7)
        echo "SECURITY: TLS or authentication failed; check the certificate and the credentials"
        ;;
    8)
        echo "TEMPORARY: the session broke (timeout, connection dropped); try again later"
        ;;
    10 | 11 | 12 | 13 | 14 | 15)
        echo "REFUSED: the server said no (exit $code), for good; its reply is in the verdict above"
        ;;
    16)
        echo "JUNK: accepted, but --confirm found it in the recipient's spam folder; see the arrival's Authentication-Results and spam headers"
        ;;
    17)
        echo "NOT ARRIVED: accepted, but --confirm did not find it in the mailbox within --confirm-timeout; look at the server's queue and filters"
        ;;
    18)
        echo "UNCHECKED: accepted, but --confirm could not check the mailbox (IMAP connection, TLS or login); the SMTP verdict stands"
        ;;
    40 | 41)
        echo "SENDER: receivers would refuse or junk this message (smtpcheck sender: SPF, DKIM, DMARC); see the next steps"
        ;;
    24 | 26 | 27 | 30 | 31 | 32 | 33 | 34 | 35)
        echo "TEMPORARY: the server asked to try again later (exit $code: a 4xx, greylisting, a busy server or a DNS timeout)"
        ;;
    130)
        echo "INTERRUPTED: the check was stopped with Ctrl-C before it finished"
        ;;
    *)
        echo "UNEXPECTED: smtpcheck exited with $code"
        ;;
esac
exit "$code"
