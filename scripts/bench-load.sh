#!/usr/bin/env bash
# Issue 14's load measurement: `esm-sim load` next to a bare PutRecords loop (same SDK,
# same server, batches of 500), alternating in one run, against kinesis-local and moto;
# records/s, CPU µs per record and TCP connections opened. Starts the local servers
# (scripts/test-servers.sh), runs examples/load_bench.rs in release mode, stops them.
# RECORDS=N and ROUNDS=N to change the size.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/test-servers.sh
ts_install
ts_start
trap ts_stop EXIT
AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
  cargo run --release --quiet --example load_bench
