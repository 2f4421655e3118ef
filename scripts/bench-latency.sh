#!/usr/bin/env bash
# Issue 14's latency measurement: put -> invoke latency of a mapping against moto's Kinesis
# (2 shards, single records at a steady pace, reads every 10 ms when caught up) next to a
# bare GetRecords loop with the same SDK and pace, alternating in one run; p50/p90/p99/max
# of each and the ratios. Starts the local servers (scripts/test-servers.sh), runs
# examples/latency_bench.rs in release mode, stops them. RECORDS=N (a run, default 300),
# PACE_MS=N (between puts, default 50) and ROUNDS=N (default 2) to change the size.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/bench-servers.sh latency_bench
