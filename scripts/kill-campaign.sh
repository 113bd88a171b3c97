#!/usr/bin/env bash
# The full crash-consistency campaign of the reliability issue: `hlspipe process-event` killed
# with SIGKILL at 200 seeded random moments while it re-publishes a live title, a sampler
# checking the whole time that no master or media playlist names a missing object, and the
# event re-delivered after every kill (tests/pipeline/kill.rs on the folder store; the suite
# runs 20 kills). With --s3, the same against the S3 test server (moto) through the fault
# proxy, which drops connections, delays requests and answers 500/503 on a seeded schedule
# (tests/aws/s3_kill.rs; the suite runs 6).
#
#   bash scripts/kill-campaign.sh            # 200 kills, folder store
#   bash scripts/kill-campaign.sh --s3       # 200 kills, folder store, then 200 on S3
#   HLSPIPE_KILLS=1000 HLSPIPE_S3_KILLS=500 bash scripts/kill-campaign.sh --s3
#
# Prints "kills survived: N/N (M mid-job); S consistent samples" for each store (and the
# proxy's fault counts for S3).
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
filter='test(sigkill_at_random_moments_never_exposes_a_missing_object_and_redelivery_completes)'
if [[ $s3 == 1 ]]; then
  filter="$filter | test(sigkill_through_a_faulty_s3_proxy_never_exposes_a_missing_object_and_redelivery_completes)"
fi
cargo nextest run --locked --workspace --no-capture --test-threads 1 -E "$filter" 2>&1 |
  grep -E 'kills survived|PASS|FAIL|panicked|after kill|redelivery'
