#!/usr/bin/env bash
# Issue 3's measurement: a mapping's drain throughput against moto's Kinesis next to a bare
# GetRecords loop, same SDK, same run. Starts the local servers (scripts/test-servers.sh),
# runs examples/drain_bench.rs in release mode, stops them. RECORDS=N to change the count.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/bench-servers.sh drain_bench
