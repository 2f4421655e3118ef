#!/usr/bin/env bash
# Issue 14's load measurement: `esm-sim load` next to a bare PutRecords loop (same SDK,
# same server, batches of 500), alternating in one run, against kinesis-local and moto;
# records/s, CPU µs per record and TCP connections opened. Starts the local servers
# (scripts/test-servers.sh), runs examples/load_bench.rs in release mode, stops them.
# RECORDS=N and ROUNDS=N to change the size.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/bench-servers.sh load_bench
