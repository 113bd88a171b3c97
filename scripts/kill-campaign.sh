#!/usr/bin/env bash
# The full crash-consistency campaign of the reliability issue: `hlspipe process-event` killed
# with SIGKILL at 200 seeded random moments while it re-publishes a live title, a sampler
# checking the whole time that no master or media playlist names a missing object, and the
# event re-delivered after every kill (tests/pipeline/kill.rs on the folder store; the suite
# runs 20 kills). With --s3, the same against the S3 test server (moto) through the fault
# proxy, which drops connections, delays requests and answers 500/503 on a seeded schedule
# (tests/aws/s3_kill.rs; the suite runs 6). Then half as many kills of the progressive
# publish of new titles, half of them once the master is out: no growing playlist names a
# missing object or ever shrinks, and each redelivery completes its title (the suite runs 10).
#
#   bash scripts/kill-campaign.sh            # 200 kills, folder store
#   bash scripts/kill-campaign.sh --s3       # 200 kills, folder store, then 200 on S3
#   HLSPIPE_KILLS=1000 HLSPIPE_S3_KILLS=500 bash scripts/kill-campaign.sh --s3
#
# Prints "kills survived: N/N (M mid-job); S consistent samples" for each store (and the
# proxy's fault counts for S3), and "progressive kills survived: N/N (M left a playable
# title)".
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

s3=0
for arg in "$@"; do
  case $arg in
    --s3) s3=1 ;;
    *) echo "usage: $0 [--s3]" >&2; exit 2 ;;
  esac
done

export HLSPIPE_KILLS="${HLSPIPE_KILLS:-200}"
export HLSPIPE_S3_KILLS="${HLSPIPE_S3_KILLS:-200}"
# The test binaries run directly: not through nextest, whose slow-timeout (5 minutes) would
# end a long campaign, nor through `cargo test`, which holds the build directory's lock.
test_binary() {
  cargo test --locked --test "$1" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1"
}
run() {
  local binary
  binary=$(test_binary "$1")
  [[ -x "$binary" ]] || { echo "kill-campaign: the $1 test binary was not built" >&2; exit 1; }
  CARGO_MANIFEST_DIR=$PWD "$binary" "$2" --exact --nocapture --test-threads 1 2>&1 |
    grep -E 'kills survived|test result|panicked|after kill|redelivery'
}
run pipeline kill::sigkill_at_random_moments_never_exposes_a_missing_object_and_redelivery_completes
run pipeline kill::sigkill_during_a_progressive_publish_never_exposes_a_missing_object_nor_shrinks_a_playlist
if [[ $s3 == 1 ]]; then
  run aws s3_kill::sigkill_through_a_faulty_s3_proxy_never_exposes_a_missing_object_and_redelivery_completes
fi
