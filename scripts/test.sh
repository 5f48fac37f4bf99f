#!/usr/bin/env bash
# Runs every fms test on this machine: builds the binaries the end-to-end tests start,
# runs the Rust tests (unit, protocol-doc and end-to-end), then the static checks of the
# deployment files. Installs what it needs (PyYAML) if missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust from https://rustup.rs first" >&2
    exit 1
fi
if ! python3 -c 'import yaml' 2>/dev/null; then
    python3 -m pip install --quiet pyyaml
fi

echo "== deployment files"
python3 scripts/check_deploy.py

echo "== launch files"
python3 scripts/check_launch.py

echo "== build"
cargo build --workspace --bins --locked

echo "== tests"
cargo test --workspace --locked
