#!/usr/bin/env bash
# Issue 3's measurement: a mapping's drain throughput against moto's Kinesis next to a bare
# GetRecords loop, same SDK, same run. Starts the local servers (scripts/test-servers.sh),
# runs examples/drain_bench.rs in release mode, stops them. RECORDS=N to change the count.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/test-servers.sh
ts_install
ts_start
trap ts_stop EXIT
AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
  cargo run --release --quiet --example drain_bench
