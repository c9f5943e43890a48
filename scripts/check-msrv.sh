#!/usr/bin/env bash
# Fails when a package in Cargo.lock declares a rust-version above the root package's (the MSRV
# the project promises), naming each such package; the same for the fuzz workspace's own
# fuzz/Cargo.lock. Reads the lock file and the packages' manifests
# through `cargo metadata --locked`: it never changes Cargo.lock and asks no registry for newer
# versions. To fix a failure, re-lock just that package: `cargo update -p NAME` picks the newest
# version within the MSRV (resolver 3 in Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

check=$(
	cat <<'PY'
import json, os, sys

meta = json.load(sys.stdin)
root_manifest = os.path.join(meta["workspace_root"], "Cargo.toml")
root = next((p for p in meta["packages"] if p["manifest_path"] == root_manifest), None)
if root is None or not root.get("rust_version"):
    sys.exit("check-msrv: the root package declares no rust-version")
msrv_text = root["rust_version"]


def version(text):
    parts = [int(x) for x in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


msrv = version(msrv_text)
lock = os.path.relpath(os.path.join(meta["workspace_root"], "Cargo.lock"))
above = sorted(
    (p["name"], p["version"], p["rust_version"])
    for p in meta["packages"]
    if p.get("rust_version") and version(p["rust_version"]) > msrv
)
for name, ver, rv in above:
    print(
        f"check-msrv: {lock}: {name} {ver} declares rust-version {rv}, above {root['name']}'s "
        f"{msrv_text}: run `cargo update -p {name}` in {os.path.dirname(lock) or '.'}",
        file=sys.stderr,
    )
if above:
    sys.exit(1)
print(f"check-msrv: all {len(meta['packages'])} packages in {lock} allow Rust {msrv_text}")
PY
)
for manifest in Cargo.toml fuzz/Cargo.toml; do
	cargo metadata --format-version 1 --locked --manifest-path "$manifest" | python3 -c "$check"
done
