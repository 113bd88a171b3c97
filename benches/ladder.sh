#!/usr/bin/env bash
# The transcoding stage's speed: 60 s of 1080p30 H.264 at 20 Mb/s to the five-rung auto ladder
# (keep-source off: 234p, 360p, 540p, 720p and 1080p encoded), wall time each way:
#
#   1. hlspipe package --ladder auto --keep-source off --concurrency 2 (release build): the
#      video in 10 s chunks (the default) cut at the source's key frames, two at a time, each to every rung
#      in one decode, stitched by the packager; the sound and previews beside them;
#   2. the same with --chunk-seconds 0: one ffmpeg run with one decode for every rung;
#   3. that one ffmpeg command alone (logged through a wrapper set as HLSPIPE_FFMPEG),
#      reading the file directly: what one hand-written command costs;
#   4. five separate ffmpeg runs, one rung each, same encoder settings: five decodes.
#
# Then a projection for a 60-minute title fanned out over 50, 200 and 1,000 workers like this
# machine: its inputs are the per-chunk times measured in run 1, the stitch time per second of
# video, the whole-source parts (previews, sound) timed on a 10-minute source made from this
# one by concatenation (no encoding), and the queue's and the store's overheads measured
# against local servers (moto's SQS; s3s-fs for S3: a put of one chunk's rungs, a small
# ranged read, hlspipe's publish rate).
#
#   bash benches/ladder.sh                 # 60 s source
#   BENCH_SECONDS=20 bash benches/ladder.sh
#   BENCH_HLSPIPE=path/to/hlspipe …        # this binary instead of a release build
#   BENCH_ONLY_CHUNKS=1 bash benches/ladder.sh   # hlspipe's chunked run and the projection only
#
# Data in bench-data/ladder/ (the source is made once). Prints tables; exits non-zero only if
# a run fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${BENCH_SECONDS:-60}
data=bench-data/ladder
mkdir -p "$data"

if [[ -z "${BENCH_HLSPIPE:-}" ]]; then
  cargo build --release --locked --bin hlspipe >&2
  hlspipe=target/release/hlspipe
else
  hlspipe=$BENCH_HLSPIPE
fi

source_file="$data/source-${seconds}s-1080p30-20M.mp4"
if [[ ! -f "$source_file" ]]; then
  echo "== making the source: ${seconds} s of 1080p30 at 20 Mb/s (coarse moving grain)" >&2
  ffmpeg -v error -y -f lavfi \
    -i "testsrc2=size=480x270:rate=30,noise=alls=20:allf=t,scale=1920:1080:flags=neighbor" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t "$seconds" \
    -c:v libx264 -preset veryfast -b:v 20M -maxrate 22M -bufsize 40M -g 60 -pix_fmt yuv420p \
    -c:a aac -b:a 128k -shortest "$source_file.tmp.mp4"
  mv "$source_file.tmp.mp4" "$source_file"
fi

# A wrapper that logs the arguments hlspipe gives ffmpeg, then runs it.
wrapper="$data/ffmpeg-logging"
cat >"$wrapper" <<'WRAP'
#!/usr/bin/env bash
printf '%s\0' "$@" >"$(dirname "$0")/ffmpeg-args"
exec ffmpeg "$@"
WRAP
chmod +x "$wrapper"

wall() { # wall seconds of a command
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$start" "$end"
}

out="$data/title"
rm -rf "$out"
t1=$(wall "$hlspipe" package --ladder auto --keep-source off \
  --concurrency 2 --segment-duration 6 "$source_file" "$out")
field() { # a field of the manifest's transcode record
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["transcode"][sys.argv[2]])' "$1" "$2"
}
encode_s=$(field "$out/manifest.json" seconds)
chunks=$(field "$out/manifest.json" chunks)
stitch_s=$(field "$out/manifest.json" stitch_seconds)
parts_json=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["transcode"]["parts"]))' "$out/manifest.json")
ladder_bytes=$(find "$out/v" -path '*video_*' -name '*.m4s' -printf '%s\n' | awk '{s += $1} END {print s}')

# BENCH_ONLY_CHUNKS=1 skips 2-4 (the baselines do not change with hlspipe's code).
t_whole=0 t2=0 t3=0
if [[ -z "${BENCH_ONLY_CHUNKS:-}" ]]; then
  # 2. one run (no chunks), its ffmpeg command logged for 3.
  whole="$data/title-whole"
  rm -rf "$whole"
  t_whole=$(HLSPIPE_FFMPEG="$PWD/$wrapper" wall "$hlspipe" package --ladder auto --keep-source off \
    --chunk-seconds 0 --segment-duration 6 "$source_file" "$whole")

  # 3. the logged command, reading the file instead of the loopback URL, writing to scratch.
  mapfile -d '' args <"$data/ffmpeg-args"
  scratch="$data/scratch"
  rm -rf "$scratch" && mkdir -p "$scratch"
  single=()
  for a in "${args[@]}"; do
    case "$a" in
      http://127.0.0.1:*) single+=("$source_file") ;;
      /*.mp4 | /*.jpg) single+=("$scratch/$(basename "$a")") ;;
      *) single+=("$a") ;;
    esac
  done
  t2=$(wall ffmpeg -hide_banner -nostdin -loglevel error "${single[@]}")

  # 4. one run per rung, the same settings as hlspipe's (from the logged command).
  t3_start=$(date +%s.%N)
  for rung in 234:416:145 360:640:365 540:960:2000 720:1280:3000 1080:1920:6000; do
    IFS=: read -r h w k <<<"$rung"
    ffmpeg -hide_banner -nostdin -loglevel error -y -i "$source_file" -map 0:v:0 -an \
      -vf "scale=$w:$h:flags=bicubic,setsar=1" -c:v libx264 -profile:v high -pix_fmt yuv420p \
      -preset veryfast -b:v "${k}k" -maxrate "$((k * 11 / 10))k" -bufsize "$((k * 2))k" \
      -x264-params sliced-threads=1 -force_key_frames 'expr:gte(t,n_forced*6)' -sc_threshold 0 \
      -g 100000 -f mp4 "$scratch/sep-$h.mp4"
  done
  t3_end=$(date +%s.%N)
  t3=$(python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$t3_start" "$t3_end")
fi

printf '\n%s s of 1080p30 at 20 Mb/s -> five-rung auto ladder, %s cores\n' "$seconds" "$(nproc)"
printf '%-62s %8s\n' "method" "wall s"
printf '%-62s %8.1f\n' "hlspipe package --ladder auto, $chunks chunks, 2 at a time" "$t1"
printf '%-62s %8.1f\n' "  of which the encode (manifest transcode.seconds)" "$encode_s"
printf '%-62s %8.1f\n' "hlspipe package --ladder auto --chunk-seconds 0 (one run)" "$t_whole"
printf '%-62s %8.1f\n' "one ffmpeg command, one decode, the same five outputs" "$t2"
printf '%-62s %8.1f\n' "five ffmpeg runs, one rung each" "$t3"
if [[ -z "${BENCH_ONLY_CHUNKS:-}" ]]; then
  printf 'ratio hlspipe (chunks) / one ffmpeg command: %.2f (target <= 1.00)\n' \
    "$(python3 -c 'import sys; print(float(sys.argv[1]) / float(sys.argv[2]))' "$t1" "$t2")"
fi
printf 'parts (wall s each): %s\nstitch (reading the chunks back as rungs): %.3f s\n' "$parts_json" "$stitch_s"

# ---- the whole-source parts on a 10-minute source (ten copies of this one, concatenated) ----
cargo build --quiet --release --locked --example ladder_part
long_seconds=$((seconds * 10))
long_file="$data/source-${long_seconds}s-1080p30-20M.mp4"
if [[ ! -f "$long_file" ]]; then
  for _ in $(seq 1 10); do printf "file '%s'\n" "$PWD/$source_file"; done >"$data/concat.txt"
  ffmpeg -v error -y -f concat -safe 0 -i "$data/concat.txt" -c copy "$long_file.tmp.mp4"
  mv "$long_file.tmp.mp4" "$long_file"
fi
previews_long_s=$(target/release/examples/ladder_part "$long_file" previews)
sound_long_s=$(target/release/examples/ladder_part "$long_file" sound)
printf 'on %s s: previews %.1f s, sound %.1f s\n' "$long_seconds" "$previews_long_s" "$sound_long_s"

# ---- the queue's and the store's overheads, against local servers ---------------------------
bash scripts/install-s3-test-deps.sh >/dev/null
cargo build --quiet --release --locked --example s3_copy
# shellcheck source=benches/local-s3.sh
source benches/local-s3.sh
s3_data="$data/s3s-fs"
start_s3s_fs "$s3_data" "$data/s3s-fs.log"
s3_port=$s3s_fs_port
sqs_port=$(free_port)
.test-deps/s3-venv/bin/moto_server -H 127.0.0.1 -p "$sqs_port" >/dev/null 2>"$data/moto.log" &
moto_pid=$!
cleanup() {
  kill "$s3s_fs_pid" "$moto_pid" 2>/dev/null || true
  wait "$s3s_fs_pid" "$moto_pid" 2>/dev/null || true
  rm -rf "$s3_data"
}
trap cleanup EXIT
wait_listening "$sqs_port"

# One chunk's rungs, and a whole 60-minute ladder scaled from this one's bytes per second.
chunk_file="$data/chunk-rungs.bin"
head -c "$((ladder_bytes / chunks))" /dev/urandom >"$chunk_file"
ladder_file="$data/ladder-60min.bin"
ladder_60=$(python3 -c 'import sys; print(int(int(sys.argv[1]) / float(sys.argv[2]) * 3600))' "$ladder_bytes" "$seconds")
# The copy is timed on a tenth of it (s3s-fs writes to this disk; the time scales with bytes).
head -c "$((ladder_60 / 10))" /dev/urandom >"$ladder_file"
(
  export AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port" AWS_ACCESS_KEY_ID=bench
  export AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  target/release/examples/s3_copy mb s3://bench
  put_s=$(wall target/release/examples/s3_copy put "$chunk_file" s3://bench/work/chunk)
  get_s=$(target/release/examples/s3_copy gets s3://bench/work/chunk 50)
  target/release/examples/s3_copy put "$ladder_file" s3://bench/work/ladder >/dev/null
  copy_s=$(wall target/release/examples/s3_copy copy s3://bench/work/ladder s3://bench/hls/ladder)
  # The stitch's own path: hlspipe reading an upload by ranges and publishing its segments
  # (several PUTs at once), on the 60 s source: its rate, bytes per second.
  target/release/examples/s3_copy put "$source_file" s3://bench/uploads/source.mp4 >/dev/null
  package_s=$(wall "$hlspipe" package s3://bench/uploads/source.mp4 s3://bench/hls/source/)
  echo "$put_s $copy_s $package_s $get_s" >"$data/store-times"
)
read -r put_s copy_tenth_s package_s get_s <"$data/store-times"
source_bytes=$(stat -c %s "$source_file")
rm -f "$chunk_file" "$ladder_file"

# SQS (moto): 120 part messages sent in batches of 10, then received and deleted one by one.
queue_times=$(.test-deps/s3-venv/bin/python - "$sqs_port" <<'PY'
import sys, time, boto3
sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                   aws_access_key_id="bench", aws_secret_access_key="bench")
url = sqs.create_queue(QueueName="ladder-bench")["QueueUrl"]
body = '{"hlspipe":"ladder-part","bucket":"b","key":"uploads/t.mp4","etag":"e","version":"v","part":"chunk-00000"}'
start = time.monotonic()
for b in range(12):
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i in range(10)])
send = time.monotonic() - start
start, n = time.monotonic(), 0
while n < 120:
    for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", []):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        n += 1
print(send, (time.monotonic() - start) / 120)
PY
)
read -r send_120_s receive_s <<<"$queue_times"

python3 - "$seconds" "$chunks" "$parts_json" "$stitch_s" "$t1" "$encode_s" "$put_s" \
  "$copy_tenth_s" "$send_120_s" "$receive_s" "$package_s" "$source_bytes" "$ladder_60" \
  "$get_s" "$previews_long_s" "$sound_long_s" "$long_seconds" <<'PY'
import json, math, sys
seconds, chunks = float(sys.argv[1]), int(sys.argv[2])
parts = {p["part"]: p["seconds"] for p in json.loads(sys.argv[3])}
stitch, t1, encode = map(float, sys.argv[4:7])
put_chunk, copy_tenth, send_120, receive, package = map(float, sys.argv[7:12])
source_bytes, ladder_60 = int(sys.argv[12]), int(sys.argv[13])
get, previews_long, sound_long, long_seconds = map(float, sys.argv[14:18])
# hlspipe's publish through the store, bytes per second (ranged reads, PUTs in parallel).
publish_rate = source_bytes / package
chunk_times = [v for k, v in parts.items() if k.startswith("chunk-")]
if not chunk_times:
    print(f"\nno projection: {seconds:.0f} s is encoded in one run (no chunks); try BENCH_SECONDS=60")
    sys.exit(0)
# A worker like this machine takes two parts at a time (two cores), as the parts ran here:
# the measured times are the times a worker's part takes.
chunk = max(chunk_times)
# The sound and the previews are parts of their own, each on a worker of its own, timed on
# the long source (a short one's time is mostly ffmpeg's start).
rest_per_s = max(previews_long, sound_long) / long_seconds
title = 3600.0
length = seconds / chunks
n = math.ceil(title / length)
rungs = 5
# Packaging the title from the parts, which the stitching worker, each share's worker and the
# flipping one each do: a ranged read of each chunk file's header (four at a time), then
# demuxing and building the headers: the stitch's time per second of video, twice (the
# stitch, then the packager over the stitched rungs).
replan = n * rungs * get / 4 + 2 * stitch * title / seconds
share = 256 * 2**20
shares = math.ceil(ladder_60 / share)
playlists = (2 * rungs + 3) * get
print(f"\nprojection: a 60-minute 1080p title, {n} chunks of {length:.0f} s + sound + previews, on W workers like this one (2 parts at a time)")
print(f"  inputs: chunk {chunk:.1f} s (slowest of {len(chunk_times)}), sound or previews (the longer) {rest_per_s:.4f} s per s of video, stitch {stitch:.3f} s per {seconds:.0f} s,")
print(f"          put of one chunk's rungs {put_chunk:.2f} s, a small ranged read {get * 1000:.1f} ms, one-stream copy of the whole ladder ({ladder_60 / 1e9:.2f} GB) {copy_tenth * 10:.1f} s,")
print(f"          hlspipe's publish through the store {publish_rate / 1e6:.0f} MB/s: the ladder by one worker in {ladder_60 / publish_rate:.1f} s, in {shares} shares of 256 MiB {share / publish_rate:.1f} s each,")
print(f"          packaging from the parts {replan:.1f} s, 120 messages sent {send_120:.2f} s, a receive+delete {receive * 1000:.0f} ms")
print(f"  {'workers':>8} {'waves':>6} {'encode s':>9} {'publish s':>10} {'total s':>8}")
for w in (50, 200, 1000):
    waves = math.ceil(n / (2 * w))
    per_chunk = receive + chunk + put_chunk
    encode_wall = max(waves * per_chunk, receive + rest_per_s * title)
    # The stitching worker packages and shares out; each share's worker packages and writes
    # its share (two at a time on a worker); the last packages again and writes the
    # playlists and the master.
    share_waves = math.ceil(shares / (2 * w))
    write = share_waves * min(share, ladder_60) / publish_rate
    publish = (replan + send_120 * shares / 120) + (receive + replan + write) + (replan + playlists)
    total = send_120 * n / 120 + encode_wall + publish
    print(f"  {w:>8} {waves:>6} {encode_wall:>9.1f} {publish:>10.1f} {total:>8.1f}")
PY
