#!/usr/bin/env bash
# S3 → S3 packaging against a plain copy of the same bytes, through a local S3 server
# on 127.0.0.1: s3s-fs by default, moto with BENCH_SERVER=moto.
#
#   bash benches/s3.sh                    # 180 s of 1080p H.264/AAC at 35 Mb/s (~800 MB)
#   BENCH_SECONDS=20 bash benches/s3.sh   # a quick run
#   BENCH_SERVER=moto bash benches/s3.sh  # against moto server, as before
#
# Reports seconds, MB/s and peak RSS (/usr/bin/time -v) of
#   baseline: examples/s3_copy copy  — one streaming GET of the input, PUT of the same bytes
#   package:  hlspipe package s3://bench/uploads/in.mp4 s3://bench/hls/in/
# and checks the targets: package ≤ 1.5 × baseline time, package peak RSS ≤ 128 MiB.
# The input is made once with ffmpeg into bench-data/ (gitignored).
# BENCH_PROFILE=dev uses the test build (dependencies optimised, except the AWS SDK clients).
#
# Why s3s-fs (scripts/install-s3s-fs.sh) and not moto: package reads the input in ranged
# GETs, and moto answers a ranged GET by reading the whole object and slicing it
# (moto/s3/responses.py, S3Response._handle_range_header), so each 8 MiB range of an 800 MB
# input costs a full read of it: the bench then measures moto, not us. s3s-fs keeps each
# object as a file and serves a range by seeking into it, in time proportional to the
# range, as real S3 does. It checks SigV4, so it is started with the same key and secret
# the clients are given. Its folder (bench-data/s3s-fs) is removed at exit; before that the
# bench checks the package output there (master playlist present, a segment decodes).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${BENCH_SECONDS:-180}
profile=${BENCH_PROFILE:-release}
say() { printf '[bench] %s\n' "$*"; }

# ---- input ----------------------------------------------------------------------------------
mkdir -p bench-data
input=bench-data/h264_aac_1080p_${seconds}s.mp4
if [[ ! -s $input ]]; then
  say "making $input (${seconds} s, 1080p25, 35 Mb/s CBR, AAC 128 kb/s)"
  # CBR with filler (nal-hrd=cbr) so the file really is 35 Mb/s: testsrc2 is easy to code.
  ffmpeg -nostdin -v error -y \
    -f lavfi -i "testsrc2=size=1920x1080:rate=25" -f lavfi -i "sine=frequency=440" \
    -t "$seconds" -c:v libx264 -preset ultrafast -g 50 \
    -b:v 35M -minrate 35M -maxrate 35M -bufsize 35M -x264-params nal-hrd=cbr \
    -c:a aac -b:a 128k -movflags +faststart "$input.tmp.mp4"
  mv "$input.tmp.mp4" "$input"
fi
bytes=$(stat -c %s "$input")
say "input: $input, $((bytes / 1000000)) MB"

# ---- binaries and server ----------------------------------------------------------------------
if [[ $profile == release ]]; then
  cargo build --quiet --release --bin hlspipe --example s3_copy
  bin=target/release
else
  cargo build --quiet --bin hlspipe --example s3_copy
  bin=target/debug
fi
server=${BENCH_SERVER:-s3s-fs}
case $server in
  s3s-fs) bash scripts/install-s3s-fs.sh >/dev/null ;;
  moto) bash scripts/install-s3-test-deps.sh >/dev/null ;;
  *)
    say "BENCH_SERVER must be s3s-fs or moto, not '$server'" >&2
    exit 1
    ;;
esac

key=bench secret=bench-secret
data=
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [[ $server == s3s-fs ]]; then
  data=bench-data/s3s-fs
  rm -rf "$data"
  mkdir -p "$data"
  .test-deps/s3s-fs/bin/s3s-fs --host 127.0.0.1 --port "$port" \
    --access-key "$key" --secret-key "$secret" "$data" >/dev/null 2>bench-data/s3s-fs.log &
else
  .test-deps/s3-venv/bin/moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>bench-data/moto.log &
fi
server_pid=$!
cleanup() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  if [[ -n $data ]]; then rm -rf "$data"; fi
}
trap cleanup EXIT
# Any HTTP answer will do (s3s-fs says 403 to an unsigned request): the server is listening.
for _ in $(seq 1 300); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.2
done

# A custom endpoint makes hlspipe and s3_copy use path-style addressing
# (S3Settings::from_env), which both servers need.
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret"
export AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset HLSPIPE_STORE

"$bin/examples/s3_copy" mb s3://bench
"$bin/examples/s3_copy" put "$input" s3://bench/uploads/in.mp4 >/dev/null

# Runs a command under /usr/bin/time -v; sets $secs and $rss_kb.
measure() {
  local log=bench-data/time.log
  /usr/bin/time -v "$@" >bench-data/out.log 2>"$log" || { cat bench-data/out.log "$log" >&2; exit 1; }
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$log")
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
}

measure "$bin/examples/s3_copy" copy s3://bench/uploads/in.mp4 s3://bench/copy/in.mp4
base_secs=$secs base_rss=$rss_kb
measure "$bin/hlspipe" package s3://bench/uploads/in.mp4 s3://bench/hls/in/
pkg_secs=$secs pkg_rss=$rss_kb

# The output is real: on s3s-fs each object is a file under $data/<bucket>/<key>.
if [[ $server == s3s-fs ]]; then
  master=$data/bench/hls/in/master.m3u8
  [[ -s $master ]] || { say "no master playlist at $master" >&2; exit 1; }
  say "output: $master, $(find "$data/bench/hls/in" -type f | wc -l) files"
  # The first segment of each rendition decodes (ffprobe -count_frames decodes every frame);
  # a media segment needs its init segment in front.
  found=0
  while IFS= read -r init; do
    segment=$(dirname "$init")/seg_00001.m4s
    [[ -s $segment ]] || { say "no $segment" >&2; exit 1; }
    say "ffprobe $segment"
    # Through a file, not a pipe: on a pipe ffprobe can only estimate the duration.
    cat "$init" "$segment" >bench-data/probe.mp4
    ffprobe -v error -count_frames -of compact=p=0 \
      -show_entries stream=codec_name,width,height,nb_read_frames:format=duration bench-data/probe.mp4
    rm -f bench-data/probe.mp4
    found=$((found + 1))
  done < <(find "$data/bench/hls/in" -name init.mp4 | sort)
  ((found)) || { say "no init.mp4 under $data/bench/hls/in" >&2; exit 1; }
fi

python3 - "$bytes" "$base_secs" "$base_rss" "$pkg_secs" "$pkg_rss" "$profile" "$server" <<'EOF'
import sys
size, bs, br, ps, pr, profile, server = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7]
mb = size / 1e6
ratio = ps / bs if bs > 0 else float("inf")
print(f"input {mb:.0f} MB, {profile} build, {server} server")
print(f"{'':10} {'seconds':>8} {'MB/s':>8} {'peak RSS':>10}")
print(f"{'GET+PUT':10} {bs:8.2f} {mb / bs:8.1f} {br / 1024:7.1f} MiB")
print(f"{'package':10} {ps:8.2f} {mb / ps:8.1f} {pr / 1024:7.1f} MiB")
print(f"ratio package / GET+PUT: {ratio:.2f} (target <= 1.5): {'ok' if ratio <= 1.5 else 'MISSED'}")
print(f"package peak RSS {pr / 1024:.1f} MiB (target <= 128): {'ok' if pr <= 128 * 1024 else 'MISSED'}")
EOF
