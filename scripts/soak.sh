#!/usr/bin/env bash
# The full soak of the reliability issue: `hlspipe dev` under 20 minutes of mixed traffic
# (uploads, re-uploads, deletions, playback API calls, segment GETs on 200 keep-alive
# connections, half-sent requests, slow readers), RSS / file descriptors / threads sampled
# every 10 s. The suite runs the same test for 60 s.
#
#   bash scripts/soak.sh [SECONDS]      # default 1200
#
# The samples are in target/test-artifacts/soak.json; the test fails when memory grows
# after the warm-up, descriptors stay open, a request fails or an error is logged.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-1200}
# Built by cargo, run directly: not through nextest, whose slow-timeout would end a
# 20-minute test, nor through `cargo test`, which would hold the build directory's lock.
binary=$(cargo test --locked --test dev --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "dev":
        print(m["executable"])')
[[ -x "$binary" ]] || { echo "soak: the dev test binary was not built" >&2; exit 1; }
HLSPIPE_SOAK_SECONDS=$seconds CARGO_MANIFEST_DIR=$PWD "$binary" \
  soak::dev_stays_flat_under_mixed_traffic --exact --nocapture
python3 - <<'PY'
import json
r = json.load(open("target/test-artifacts/soak.json"))
s = r["samples"]
print(f"soak {r['seconds']} s: {r['segment_gets_ok']} segment GETs ok, {r['segment_gets_failed']} failed, "
      f"{r['api_calls']} API calls, {r['uploads']} uploads, {r['deletions']} deletions, "
      f"half-sent requests closed after at most {r['half_open_max_ms'] / 1000:.1f} s")
for x in s:
    print(f"  t={x['at_s']:7.1f} s  rss={x['rss_kib'] / 1024:6.1f} MiB  fds={x['fds']:4d}  threads={x['threads']:4d}")
PY
