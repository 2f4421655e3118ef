#!/usr/bin/env bash
# The lease benchmark (issue 12): simulate fixtures/bench/leases-1000-shards.toml (1,000
# shards, worker 1 from 0 s, workers 2-4 joining at 60 s) with max_steals_per_pass = 1
# (KCL's default) and 10, release build. Prints how long after the joins the table was
# balanced at 250/250/250/250 for good, and the lease table calls per shard per minute at
# steady state (from the last lease move to the end; all calls, and renew + list alone).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for steals in 1 10; do
  sed "s/STEALS/$steals/" fixtures/bench/leases-1000-shards.toml > "$dir/leases.toml"
  ./target/release/esm-sim simulate --config "$dir/leases.toml" --report "$dir/report.json" \
    >/dev/null 2>&1
  python3 - "$dir/report.json" "$steals" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["workers"]["lease_table"]
held = sorted(w["leases_held_at_end"] for w in r["workers"]["workers"])
since = t["balanced_since_seconds"]
s = t["steady_state"] or {}
print(f"max_steals_per_pass {sys.argv[2]:>2}: held at end {held}, balanced "
      + (f"{since - 60:.1f} s after the joins" if since is not None else "never")
      + f"; steady state {s.get('calls_per_shard_per_minute', float('nan')):.1f} calls/shard/min"
      + f" ({s.get('renew_and_list_calls_per_shard_per_minute', float('nan')):.1f} renew + list)"
      + f" over {s.get('seconds', 0):.0f} s; wall {r['wall_seconds']:.1f} s")
PY
done
