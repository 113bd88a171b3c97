#!/usr/bin/env bash
# Progressive publish through S3: how soon a new title plays, and how long until it is
# complete, against one plain GET + multipart PUT of the same bytes, through s3s-fs on
# 127.0.0.1.
#
#   bash benches/progressive.sh                  # 60 minutes of 1080p at 8 Mb/s (~3.6 GB)
#   BENCH_MINUTES=5 bash benches/progressive.sh  # a quick run
#
# The upload is a minute of 1080p25 H.264 (8 Mb/s CBR) with AAC, joined BENCH_MINUTES times
# with `ffmpeg -f concat -c copy` (no encoding), made once into bench-data/. Then:
#   baseline: examples/s3_copy copy  — one streaming GET of the upload, multipart PUT of it
#   publish:  hlspipe process-event on the upload's S3 event (the worker's own job, with no
#             live version: published progressively), under /usr/bin/time -v
#   far:      the same publish through examples/latency_proxy, which holds every request
#             back BENCH_LATENCY_MS (20) ms, as far as S3 is from an instance in its region
#   ladder:   one minute of it with HLSPIPE_LADDER=auto: playable from its first chunks on
# Reported: seconds to the first master (the title plays; the s3s-fs folder is watched every
# 50 ms), seconds to complete, peak RSS. Targets (the progressive-publish issue): first
# playable <= 5 s (near and far), complete <= 1.1 x the plain copy, peak RSS <= 128 MiB.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
minutes=${BENCH_MINUTES:-60}
say() { printf '[bench] %s\n' "$*"; }

mkdir -p bench-data
minute=bench-data/h264_aac_1080p_60s_8M.mp4
if [[ ! -s $minute ]]; then
  say "making $minute (60 s, 1080p25, 8 Mb/s CBR, AAC 128 kb/s)"
  ffmpeg -nostdin -v error -y \
    -f lavfi -i "testsrc2=size=1920x1080:rate=25" -f lavfi -i "sine=frequency=440" \
    -t 60 -c:v libx264 -preset ultrafast -g 50 \
    -b:v 8M -minrate 8M -maxrate 8M -bufsize 8M -x264-params nal-hrd=cbr \
    -c:a aac -b:a 128k "$minute.tmp.mp4"
  mv "$minute.tmp.mp4" "$minute"
fi
input=bench-data/h264_aac_1080p_${minutes}min_8M.mp4
if [[ ! -s $input ]]; then
  say "joining $minutes copies into $input"
  for _ in $(seq 1 "$minutes"); do printf "file '%s'\n" "$PWD/$minute"; done >bench-data/concat.txt
  ffmpeg -nostdin -v error -y -f concat -safe 0 -i bench-data/concat.txt -c copy \
    -movflags +faststart "$input.tmp.mp4"
  mv "$input.tmp.mp4" "$input"
fi
bytes=$(stat -c %s "$input")
say "input: $input, $((bytes / 1000000)) MB"

cargo build --quiet --release --locked --bin hlspipe --example s3_copy --example latency_proxy
bin=target/release

# shellcheck source=benches/local-s3.sh
source benches/local-s3.sh
data=bench-data/s3s-fs
use_s3s_fs "$data" bench-data/s3s-fs.log
trap stop_s3s_fs EXIT

"$bin/examples/s3_copy" mb s3://bench
"$bin/examples/s3_copy" put "$input" s3://bench/uploads/talk.mp4 >/dev/null

time_log=bench-data/time.log
measure() { # runs a command under /usr/bin/time -v; sets $secs and $rss_kb
  /usr/bin/time -v "$@" >bench-data/out.log 2>"$time_log" || { cat bench-data/out.log "$time_log" >&2; exit 1; }
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$time_log")
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$time_log")
}
measure "$bin/examples/s3_copy" copy s3://bench/uploads/talk.mp4 s3://bench/copy/talk.mp4
copy_secs=$secs
rm -rf "$data/bench/copy"

# run_publish KEY ENDPOINT [VAR=VALUE...]: hlspipe process-event on KEY's upload event (the
# worker's own job; the title has no live version, so it is published progressively), with
# the store at ENDPOINT and the settings given, under /usr/bin/time -v. The s3s-fs folder is
# watched every 50 ms for the master. Sets $first (seconds to the first master: the title
# plays), $complete and $rss_kb; removes what it published afterwards.
run_publish() {
  local key=$1 endpoint=$2 size title master event=bench-data/progressive-event.json
  shift 2
  size=$(stat -c %s "$data/bench/$key")
  title=${key#uploads/}
  master=$data/bench/hls/${title%.*}.hls/master.m3u8
  # The upload's event, as S3 sends it (the key and size; no ETag: the job reads it).
  python3 - "$key" "$size" >"$event" <<'PY'
import json, sys
print(json.dumps({"Records": [{
    "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
    "eventTime": "2026-01-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
    "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "bench", "arn": "arn:aws:s3:::bench"},
           "object": {"key": sys.argv[1], "size": int(sys.argv[2]), "sequencer": "01"}}}]}))
PY
  local start job
  start=$(date +%s.%N)
  env AWS_ENDPOINT_URL="$endpoint" "$@" /usr/bin/time -v "$bin/hlspipe" process-event "$event" \
    --json >bench-data/out.log 2>"$time_log" &
  job=$!
  first=""
  while kill -0 "$job" 2>/dev/null; do
    if [[ -z $first && -s $master ]]; then
      first=$(python3 -c 'import sys,time; print(time.time() - float(sys.argv[1]))' "$start")
      say "first master after ${first} s: $(grep -c event.m3u8 "$master") growing playlists"
    fi
    sleep 0.05
  done
  wait "$job" || { cat bench-data/out.log "$time_log" >&2; exit 1; }
  complete=$(python3 -c 'import sys,time; print(time.time() - float(sys.argv[1]))' "$start")
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$time_log")
  grep -q '"processed"' bench-data/out.log || { cat bench-data/out.log >&2; exit 1; }
  grep -q 'index.m3u8' "$master" || { say "the final master names no VOD playlist" >&2; exit 1; }
  say "published: $(find "$(dirname "$master")" -name '*.m4s' | wc -l) segments in $complete s"
  rm -rf "$data/bench/hls"
}

store="http://127.0.0.1:$s3s_fs_port"
run_publish uploads/talk.mp4 "$store"
near_first=$first near_complete=$complete near_rss=$rss_kb

# The same through a proxy adding 20 ms to every request (BENCH_LATENCY_MS).
latency_ms=${BENCH_LATENCY_MS:-20}
"$bin/examples/latency_proxy" "127.0.0.1:$s3s_fs_port" "$latency_ms" >bench-data/proxy.out &
proxy_pid=$!
trap 'kill "$proxy_pid" 2>/dev/null || true; stop_s3s_fs' EXIT
for _ in $(seq 1 100); do grep -q listening bench-data/proxy.out && break; sleep 0.1; done
proxy=$(awk '/listening/ {print $2}' bench-data/proxy.out)
run_publish uploads/talk.mp4 "http://$proxy"
far_first=$first far_complete=$complete

# With the ladder on (auto, in 10 s chunks, two at a time on this machine): one minute of
# the same picture, published from its first chunks on while the later ones encode.
"$bin/examples/s3_copy" put "$minute" s3://bench/uploads/ladder.mp4 >/dev/null
run_publish uploads/ladder.mp4 "$store" HLSPIPE_LADDER=auto HLSPIPE_CONCURRENCY=2
ladder_first=$first ladder_complete=$complete

python3 - "$bytes" "$copy_secs" "${near_first:-nan}" "$near_complete" "$near_rss" "$minutes" \
  "$latency_ms" "${far_first:-nan}" "$far_complete" "${ladder_first:-nan}" "$ladder_complete" <<'PY'
import sys
size, copy, first, complete, rss, minutes = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
latency, far_first, far_complete = sys.argv[7], float(sys.argv[8]), float(sys.argv[9])
ladder_first, ladder_complete = float(sys.argv[10]), float(sys.argv[11])
mb = size / 1e6
ok = lambda good: "ok" if good else "MISSED"
print(f"{minutes} min of 1080p, {mb:.0f} MB, through s3s-fs")
print(f"  plain GET + multipart PUT      {copy:8.1f} s  {mb / copy:6.1f} MB/s")
print(f"  first playable master          {first:8.1f} s  (target <= 5): {ok(first <= 5)}")
ratio = complete / copy
print(f"  complete                       {complete:8.1f} s  {mb / complete:6.1f} MB/s, {ratio:.2f} x the copy (target <= 1.10): {ok(ratio <= 1.1)}")
print(f"  peak RSS                       {rss / 1024:8.1f} MiB (target <= 128): {ok(rss <= 128 * 1024)}")
print(f"with {latency} ms added to every request")
print(f"  first playable master          {far_first:8.1f} s  (target <= 5): {ok(far_first <= 5)}")
print(f"  complete                       {far_complete:8.1f} s  {far_complete / copy:.2f} x the plain copy")
print("1 min of the same, ladder auto in 10 s chunks")
print(f"  first playable master          {ladder_first:8.1f} s")
print(f"  complete                       {ladder_complete:8.1f} s")
PY
