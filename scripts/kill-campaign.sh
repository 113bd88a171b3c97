#!/usr/bin/env bash
# The full crash-consistency campaign of the reliability issue: `hlspipe process-event` killed
# with SIGKILL at 200 seeded random moments while it re-publishes a live title, a sampler
# checking the whole time that no master or media playlist names a missing object, and the
# event re-delivered after every kill (tests/pipeline/kill.rs; the suite runs 20 kills).
#
#   bash scripts/kill-campaign.sh            # 200 kills
#   HLSPIPE_KILLS=1000 bash scripts/kill-campaign.sh
#
# Prints "kills survived: N/N (M mid-job); S consistent samples".
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export HLSPIPE_KILLS="${HLSPIPE_KILLS:-200}"
cargo nextest run --locked --workspace --no-capture \
  -E 'test(sigkill_at_random_moments_never_exposes_a_missing_object_and_redelivery_completes)' 2>&1 |
  grep -E 'kills survived|PASS|FAIL|panicked|after kill'
