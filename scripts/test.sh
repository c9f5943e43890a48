#!/usr/bin/env bash
# The one test command: starts the interop mail servers on loopback (installing Postfix, aiosmtpd
# and dnsmasq if missing), runs every test (unit, integration, interop), then stops the servers.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tools the integration tests use: xmllint checks the JUnit report against its schema; shellcheck, jq
# and Python's yaml check the examples; script (a terminal) runs the colour, ticker and Ctrl-C
# tests. Under CI a missing tool fails those tests.
need=()
command -v xmllint >/dev/null 2>&1 || need+=(libxml2-utils)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v script >/dev/null 2>&1 || need+=(bsdutils)
if [ "${#need[@]}" -gt 0 ]; then
	echo "== installing ${need[*]} (Debian packages) for the integration tests"
	command -v apt-get >/dev/null 2>&1 || { echo "no apt-get to install ${need[*]}" >&2; exit 1; }
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
	echo "== installing PyYAML for the integration tests"
	python3 -m pip install --quiet pyyaml >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-yaml >/dev/null
	}
fi

# pyspf, dkimpy (with dnspython and PyNaCl for Ed25519) are the independent SPF and DKIM
# implementations tests/it/sender.rs cross-checks against; under CI a missing one fails that test.
if ! python3 -c 'import spf, dkim, dns.resolver, nacl' >/dev/null 2>&1; then
	echo "== installing pyspf, dkimpy, dnspython and PyNaCl for tests/it/sender.rs"
	python3 -m pip install --quiet pyspf dkimpy dnspython pynacl >/dev/null
fi

scripts/interop.sh up
trap 'scripts/interop.sh down' EXIT
cargo test --workspace --locked "$@"
