#!/usr/bin/env bash
# One benchmark example against the local servers: `scripts/bench-servers.sh NAME` installs
# and starts them (scripts/test-servers.sh; TEST_SERVERS_STATE as there), runs
# examples/NAME.rs in release mode with test credentials and the endpoints in its
# environment, and stops them however it ends. What bench-drain.sh, bench-load.sh and
# bench-latency.sh share.
set -euo pipefail
cd "$(dirname "$0")/.."
example="${1:?usage: scripts/bench-servers.sh EXAMPLE (a file name in examples/, without .rs)}"
source scripts/test-servers.sh
ts_install
ts_start
trap ts_stop EXIT
AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
  cargo run --release --quiet --example "$example"
