#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Works on the stable toolchain: `--sanitizer none` needs no nightly-only -Z flag (libFuzzer's
# coverage instrumentation is plain codegen options). Installs cargo-fuzz when it is missing.
# The corpus grows in fuzz/corpus/TARGET (not committed), seeded from fuzz/seeds/TARGET; a crash
# is written to fuzz/artifacts/TARGET/ and makes this script fail: turn it into a regression test
# (tests/it/properties.rs or a unit test) before fixing it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(reply_parser message_loader ehlo_capabilities header_scan envelope)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Fuzzing is CPU-bound for its whole duration: be polite to whatever else runs on the machine.
niceness=(nice -n "${FUZZ_NICE:-10}")

for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== fuzzing $t for ${seconds}s"
    "${niceness[@]}" cargo fuzz run --sanitizer none "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
done
echo "== fuzzing done: no crash in ${targets[*]}"
