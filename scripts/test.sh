#!/usr/bin/env bash
# The one test command: starts the interop mail servers on loopback (installing Postfix, aiosmtpd
# and dnsmasq if missing), runs every test (unit, integration, interop), then stops the servers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/interop.sh up
trap 'scripts/interop.sh down' EXIT
cargo test --locked "$@"
