#!/usr/bin/env bash
# The transcoding stage's speed: 60 s of 1080p30 H.264 at 20 Mb/s to the five-rung auto ladder
# (keep-source off: 234p, 360p, 540p, 720p and 1080p encoded), three ways, wall time each:
#
#   1. hlspipe package --ladder auto --keep-source off --concurrency 2 (release build):
#      one ffmpeg run with one decode for every rung, then packaging and writing the title;
#   2. the same ffmpeg command alone, as hlspipe ran it (logged through a wrapper set as
#      HLSPIPE_FFMPEG), reading the file directly: what one hand-written command costs;
#   3. five separate ffmpeg runs, one rung each, same encoder settings: five decodes.
#
#   bash benches/ladder.sh                 # 60 s source
#   BENCH_SECONDS=20 bash benches/ladder.sh
#   BENCH_HLSPIPE=path/to/hlspipe …        # this binary instead of a release build
#
# Data in bench-data/ladder/ (the source is made once). Prints a table; exits non-zero only if
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
t1=$(HLSPIPE_FFMPEG="$PWD/$wrapper" wall "$hlspipe" package --ladder auto --keep-source off \
  --concurrency 2 --segment-duration 6 "$source_file" "$out")
encode_s=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["transcode"]["seconds"])' "$out/manifest.json")

# 2. the logged command, reading the file instead of the loopback URL, writing to scratch.
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

# 3. one run per rung, the same settings as hlspipe's (from the logged command).
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

printf '\n%s s of 1080p30 at 20 Mb/s -> five-rung auto ladder, %s cores\n' "$seconds" "$(nproc)"
printf '%-58s %8s\n' "method" "wall s"
printf '%-58s %8.1f\n' "hlspipe package --ladder auto (encode + package + write)" "$t1"
printf '%-58s %8.1f\n' "  of which the encode (manifest transcode.seconds)" "$encode_s"
printf '%-58s %8.1f\n' "one ffmpeg command, one decode, the same five outputs" "$t2"
printf '%-58s %8.1f\n' "five ffmpeg runs, one rung each" "$t3"
printf 'ratio hlspipe / one ffmpeg command: %.2f (target <= 1.00)\n' \
  "$(python3 -c 'import sys; print(float(sys.argv[1]) / float(sys.argv[2]))' "$t1" "$t2")"
