#!/usr/bin/env bash
# The long fuzzing campaign: libFuzzer (cargo-fuzz) on fuzz/fuzz_targets/demux.rs, which runs
# any bytes through the demuxer and the packager (progressive and fragmented MP4, QuickTime,
# edit lists, every audio format). The seed corpus is every media and corrupt fixture, so the
# fuzzer starts from real box structures. The suite runs a reduced, seeded campaign of its own
# (tests/media/mutate.rs); this one runs for as long as asked.
#
#   bash scripts/fuzz.sh              # 10 minutes
#   FUZZ_SECONDS=3600 bash scripts/fuzz.sh
#
# Installs cargo-fuzz once (crates.io). Uses RUSTC_BOOTSTRAP=1 because libFuzzer's sanitizer
# flags need nightly features and this machine has only the stable toolchain. Crashes land in
# fuzz/artifacts/demux/; the corpus it grows in fuzz/corpus/demux/ (both gitignored).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_TO_RUN="${FUZZ_SECONDS:-600}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== cargo install cargo-fuzz --locked" >&2
  cargo install cargo-fuzz --locked
fi

corpus=fuzz/corpus/demux
mkdir -p "$corpus"
for f in fixtures/media/*.mp4 fixtures/media/*.m4a fixtures/media/*.mov fixtures/corrupt/*.mp4; do
  cp -n "$f" "$corpus/$(basename "$f")"
done

echo "== cargo fuzz run demux for ${SECONDS_TO_RUN} s" >&2
cd fuzz
cargo fuzz run demux "../$corpus" -- \
  -max_total_time="$SECONDS_TO_RUN" -max_len=1048576 -rss_limit_mb=2048 -print_final_stats=1
