#!/usr/bin/env bash
# Installs what the tests need and runs every test: the one test command of the README,
# and what CI (.ci/run) calls. Safe to run on a fresh machine and again on a used one.
#
# Today's tests need only the Rust toolchain: the engine runs against the in-memory
# simulated world. (Real-server tests against kinesis-local and moto come with the AWS
# backends; this script will install and start those servers itself.)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found. Install Rust with rustup (https://rustup.rs), then run this again." >&2
  exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test --all-targets"
cargo test --all-targets
