#!/usr/bin/env bash
# `hlspipe reprocess` at catalogue scale.
#
#   bash benches/reprocess.sh                     # 1,000 titles; plans of 10,000 and 100,000
#   BENCH_TITLES=200 bash benches/reprocess.sh    # a quick run
#
# 1. The plan (the --dry-run's work) over 10,000 and 100,000 up-to-date titles on an
#    in-process store that makes the catalogue up as it is read (examples/plan_catalogue):
#    seconds, titles/s and peak RSS. Targets: 100,000 in under 60 s; RSS flat, <= 64 MiB.
# 2. Through s3s-fs on 127.0.0.1: BENCH_TITLES (1,000) small titles (10 s of 320x180) under
#    uploads/c/, reprocessed at concurrency 1, 2, 4 and 8 (the outputs removed between
#    runs): titles/s and peak RSS of each run.
# 3. The plan of 10,000 new titles through s3s-fs, and the server's own time to list them
#    (examples/s3_copy ls). s3s-fs 0.14.1 walks the whole bucket for every listing page and
#    lists no ETags, so 100,000 titles would measure the server, not the planner.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
titles=${BENCH_TITLES:-1000}
say() { printf '[bench] %s\n' "$*"; }

cargo build --quiet --release --locked --bin hlspipe --example s3_copy --example plan_catalogue
bin=target/release

say "the plan on an in-process store"
for n in 10000 100000; do
  "$bin/examples/plan_catalogue" "$n" | sed 's/^/  /'
done

mkdir -p bench-data
clip=bench-data/clip_320x180_10s.mp4
if [[ ! -s $clip ]]; then
  ffmpeg -nostdin -v error -y -f lavfi -i "testsrc2=size=320x180:rate=25" \
    -f lavfi -i "sine=frequency=440" -t 10 -c:v libx264 -preset veryfast -g 50 \
    -c:a aac -b:a 64k -movflags +faststart "$clip.tmp.mp4"
  mv "$clip.tmp.mp4" "$clip"
fi

# shellcheck source=benches/local-s3.sh
source benches/local-s3.sh
data=bench-data/s3s-fs
use_s3s_fs "$data" bench-data/s3s-fs.log
trap stop_s3s_fs EXIT

"$bin/examples/s3_copy" mb s3://bench
"$bin/examples/s3_copy" put-many "$clip" s3://bench/uploads/c/ "$titles" >/dev/null
say "$titles titles of $(stat -c %s "$clip") bytes through s3s-fs"
time_log=bench-data/time.log
for concurrency in 1 2 4 8; do
  rm -rf "$data/bench/hls"
  /usr/bin/time -v "$bin/hlspipe" reprocess --prefix s3://bench/uploads/ \
    --concurrency "$concurrency" --json >bench-data/reprocess.out 2>"$time_log" ||
    { tail -5 bench-data/reprocess.out "$time_log" >&2; exit 1; }
  processed=$(grep -c '"outcome":"processed"' bench-data/reprocess.out || true)
  [[ $processed == "$titles" ]] || { say "only $processed of $titles processed" >&2; exit 1; }
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$time_log")
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$time_log")
  python3 -c 'import sys; t, s, r, c = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]; print(f"  concurrency {c}: {s:7.1f} s  {t / s:6.1f} titles/s  peak RSS {r / 1024:6.1f} MiB")' \
    "$titles" "$secs" "$rss_kb" "$concurrency"
done

say "the plan of 10,000 new titles through s3s-fs"
rm -rf "$data/bench/hls" "$data/bench/uploads"
"$bin/examples/s3_copy" put-many "$clip" s3://bench/uploads/c/ 10000 >/dev/null
listing=$("$bin/examples/s3_copy" ls s3://bench/uploads/)
start=$(date +%s.%N)
"$bin/hlspipe" reprocess --prefix s3://bench/uploads/ --dry-run >bench-data/plan.out
plan_secs=$(python3 -c 'import sys,time; print(f"{time.time() - float(sys.argv[1]):.1f}")' "$start")
echo "  dry run: ${plan_secs} s; $(tail -1 bench-data/plan.out)"
echo "  the server alone, one listing of the same keys: $listing (the plan lists twice)"
