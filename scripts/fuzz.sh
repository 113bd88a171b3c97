#!/usr/bin/env bash
# The fuzzing campaign: libFuzzer (cargo-fuzz) on every parser of outside bytes, one target
# after another (fuzz/fuzz_targets/; the properties each checks are in src/testing/fuzz.rs):
#
#   demux         any bytes through the demuxer and the packager (progressive and fragmented)
#   text          subtitles: SRT, WebVTT, tx3g, side-file names, the WebVTT segmenter
#   events        S3 / SQS / EventBridge event JSON, S3 key encoding
#   sign          signed cookies and URLs verified with the fixture keys, policies, base64
#   edge_request  the edge's request path, Range and conditional fields
#   config        the worker's TOML configuration and HLSPIPE_* variables
#
#   bash scripts/fuzz.sh                       # all: demux 30 min, the others 10 min each
#   bash scripts/fuzz.sh sign config           # some
#   FUZZ_SECONDS=60 bash scripts/fuzz.sh       # each for a minute
#
# The targets build against the library without its `service` feature (no AWS SDK, no
# server): a few minutes on two cores. RUSTC_BOOTSTRAP=1 because libFuzzer's sanitizer flags
# need nightly features and only the stable toolchain is here. Release builds with debug
# assertions and overflow checks (-O -a), AddressSanitizer (the default).
#
# Corpus: the committed seeds (fuzz/seeds/<target>/) and, for the demuxer, every media and
# corrupt fixture; it grows in fuzz/corpus/<target>/ (gitignored). A crash stops that target
# and lands in fuzz/artifacts/<target>/: minimise it (`cargo fuzz tmin`), fix the fault, and
# commit the input to fixtures/fuzz/<target>/, where tests/harness/fuzz_inputs.rs runs it.
# One line per target goes to fuzz/campaign.tsv: target, seconds, executions, crashes.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export RUSTC_BOOTSTRAP=1

all_targets=(demux text events sign edge_request config)
targets=("$@")
if [ "$#" -eq 0 ]; then targets=("${all_targets[@]}"); fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== cargo install cargo-fuzz --locked" >&2
  cargo install cargo-fuzz --locked
fi

seed() {
  local target=$1 corpus=fuzz/corpus/$1
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  local sources=("fuzz/seeds/$target"/*)
  case "$target" in
    demux) sources+=(fixtures/media/*.mp4 fixtures/media/*.m4a fixtures/media/*.mov fixtures/corrupt/*.mp4) ;;
    events) sources+=(fixtures/events/*.json) ;;
  esac
  for f in "${sources[@]}"; do
    [ -f "$f" ] && cp -n "$f" "$corpus/$(basename "$f")"
  done
  if [ -d "fixtures/fuzz/$target" ]; then
    cp -n "fixtures/fuzz/$target"/* "$corpus/" 2>/dev/null || true
  fi
}

echo "== cargo fuzz build -O -a (every target)" >&2
(cd fuzz && cargo fuzz build -O -a)

status=0
for target in "${targets[@]}"; do
  seconds=${FUZZ_SECONDS:-$([ "$target" = demux ] && echo 1800 || echo 600)}
  seed "$target"
  before=$(find "fuzz/artifacts/$target" -type f | wc -l)
  log=fuzz/artifacts/$target.log
  echo "== $target for ${seconds} s (log: $log)" >&2
  set +e
  (cd fuzz && cargo fuzz run -O -a "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=1048576 -timeout=20 -rss_limit_mb=2048 \
    -print_final_stats=1) >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=$(( $(find "fuzz/artifacts/$target" -type f | wc -l) - before ))
  printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$target" "$seconds" "${execs:-?}" "$crashes" \
    | tee -a fuzz/campaign.tsv
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    echo "!! $target: libFuzzer exited $rc, $crashes new input(s) in fuzz/artifacts/$target/" >&2
    grep -m5 -E "panicked|ERROR|SUMMARY" "$log" >&2 || true
    status=1
  fi
done
exit "$status"
