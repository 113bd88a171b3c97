#!/usr/bin/env bash
# S3 → S3 packaging against a plain copy of the same bytes, through a local S3 server
# (moto on 127.0.0.1).
#
#   bash benches/s3.sh                    # 180 s of 1080p H.264/AAC at 35 Mb/s (~800 MB)
#   BENCH_SECONDS=20 bash benches/s3.sh   # a quick run
#
# Reports seconds, MB/s and peak RSS (/usr/bin/time -v) of
#   baseline: examples/s3_copy copy  — one streaming GET of the input, PUT of the same bytes
#   package:  hlspipe package s3://bench/uploads/in.mp4 s3://bench/hls/in/
# and checks the targets: package ≤ 1.5 × baseline time, package peak RSS ≤ 128 MiB.
# The input is made once with ffmpeg into bench-data/ (gitignored).
# BENCH_PROFILE=dev uses the debug build (dependencies are optimised there too).
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
bash scripts/install-s3-test-deps.sh >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.test-deps/s3-venv/bin/moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>bench-data/moto.log &
moto=$!
trap 'kill "$moto" 2>/dev/null || true; wait "$moto" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  curl -fs -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.2
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
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

python3 - "$bytes" "$base_secs" "$base_rss" "$pkg_secs" "$pkg_rss" "$profile" <<'EOF'
import sys
size, bs, br, ps, pr, profile = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
mb = size / 1e6
ratio = ps / bs if bs > 0 else float("inf")
print(f"input {mb:.0f} MB, {profile} build")
print(f"{'':10} {'seconds':>8} {'MB/s':>8} {'peak RSS':>10}")
print(f"{'GET+PUT':10} {bs:8.2f} {mb / bs:8.1f} {br / 1024:7.1f} MiB")
print(f"{'package':10} {ps:8.2f} {mb / ps:8.1f} {pr / 1024:7.1f} MiB")
print(f"ratio package / GET+PUT: {ratio:.2f} (target <= 1.5): {'ok' if ratio <= 1.5 else 'MISSED'}")
print(f"package peak RSS {pr / 1024:.1f} MiB (target <= 128): {'ok' if pr <= 128 * 1024 else 'MISSED'}")
EOF
