#!/usr/bin/env bash
# Packaging speed and memory: `hlspipe package` against `cp` (the floor: copying the bytes) and
# `ffmpeg -c copy -f hls` (the usual tool), on large 1080p H.264+AAC inputs, progressive and
# fragmented (the same samples remuxed as browser recorders and OBS write them: empty moov,
# one moof+mdat per GOP).
#
#   bash benches/package.sh                    # 180 s (~800 MB) and 90 s (~400 MB) inputs
#   BENCH_SECONDS=10 bash benches/package.sh   # quick check of the script: 10 s and 5 s inputs
#   BENCH_RUNS=3 …                             # runs per tool (default 5; the median is shown)
#
# Inputs are made once with ffmpeg and cached in bench-data/ (gitignored). Each run copies or
# packages into a fresh directory, removed afterwards; the page cache is warmed first. Time is
# the median wall clock; peak RSS is the largest `Maximum resident set size` of /usr/bin/time -v.
# Two input sizes show whether memory stays flat as the input grows (it must: ranged reads).
# Exits 1 if any tool failed (its row says so); the other rows are still measured.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_LONG="${BENCH_SECONDS:-180}"
SECONDS_SHORT=$((SECONDS_LONG / 2))
RUNS="${BENCH_RUNS:-5}"
DATA=bench-data

for tool in ffmpeg /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "$tool missing: run scripts/install-test-deps.sh" >&2; exit 1; }
done
mkdir -p "$DATA"

# make_input SECONDS: bench-data/testsrc2_1080p30_<S>s.mp4, 35 Mb/s CBR-ish H.264 + AAC 128k.
make_input() {
  local secs=$1 path="$DATA/testsrc2_1080p30_${1}s.mp4"
  if [[ ! -s "$path" ]]; then
    echo "making $path (${secs} s of 1080p; once, then cached)" >&2
    nice ffmpeg -nostdin -hide_banner -loglevel error -y \
      -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=$secs" \
      -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=$secs" \
      -c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 60 \
      -b:v 35M -maxrate 35M -bufsize 70M \
      -c:a aac -b:a 128k -ac 2 -movflags +faststart "$path.partial.mp4"
    mv "$path.partial.mp4" "$path"
  fi
  echo "$path"
}

# make_fragmented PATH: PATH's samples remuxed fragmented (…_frag.mp4 beside it; cached too).
make_fragmented() {
  local path="${1%.mp4}_frag.mp4"
  if [[ ! -s "$path" ]]; then
    echo "making $path (a remux, once)" >&2
    ffmpeg -nostdin -hide_banner -loglevel error -y -i "$1" -c copy \
      -movflags frag_keyframe+empty_moov+default_base_moof "$path.partial.mp4"
    mv "$path.partial.mp4" "$path"
  fi
  echo "$path"
}

long="$(make_input "$SECONDS_LONG")"
short="$(make_input "$SECONDS_SHORT")"
inputs=("$long" "$short" "$(make_fragmented "$long")" "$(make_fragmented "$short")")

echo "== cargo build --release --locked" >&2
cargo build --release --locked --quiet
HLSPIPE=target/release/hlspipe

# tool_command NAME INPUT OUT: sets cmd to one run of one tool into the empty directory OUT.
tool_command() {
  case "$1" in
    cp) cmd=(cp "$2" "$3/input.mp4") ;;
    ffmpeg) cmd=(ffmpeg -nostdin -v error -i "$2" -c copy -f hls -hls_segment_type fmp4 -hls_time 6 "$3/index.m3u8") ;;
    hlspipe) cmd=("$HLSPIPE" package "$2" "$3") ;;
  esac
}

# measure NAME INPUT: prints "median_seconds peak_rss_kib", or "FAILED" (and the tool's stderr
# on stderr) if any run failed.
measure() {
  local name=$1 input=$2 times=() peak=0 i out t0 t1 rss cmd
  for ((i = 0; i < RUNS; i++)); do
    out="$(mktemp -d "$DATA/out.XXXXXX")"
    t0=$(date +%s%N)
    tool_command "$name" "$input" "$out"
    if ! /usr/bin/time -v -o "$out.time" "${cmd[@]}" </dev/null >/dev/null 2>"$out.err"; then
      echo "$name failed on $input:" >&2
      grep -v '^\s' "$out.err" | head -5 >&2 || true
      rm -rf "$out" "$out.time" "$out.err"
      echo FAILED
      return
    fi
    t1=$(date +%s%N)
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')")
    rss=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$out.time")
    ((rss > peak)) && peak=$rss
    rm -rf "$out" "$out.time" "$out.err"
  done
  printf '%s %s\n' "$(printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')" "$peak"
}

status=0
printf '\n%-34s %-8s %9s %9s %13s %9s %12s\n' input tool seconds MB/s "peak RSS MiB" "vs cp" "vs ffmpeg"
for input in "${inputs[@]}"; do
  size=$(stat -c %s "$input")
  cat "$input" >/dev/null # warm the page cache: every tool reads from memory
  declare -A secs=()
  for name in cp ffmpeg hlspipe; do
    read -r t rss < <(measure "$name" "$input")
    if [[ "$t" == FAILED ]]; then
      status=1
      printf '%-34s %-8s %9s\n' "$(basename "$input")" "$name" FAILED
      continue
    fi
    secs[$name]=$t
    awk -v f="$(basename "$input")" -v n="$name" -v t="$t" -v rss="$rss" -v size="$size" \
      -v cp="${secs[cp]:-}" -v ff="${secs[ffmpeg]:-}" 'BEGIN {
        ratio = (cp != "" && cp > 0) ? sprintf("%.2fx", t / cp) : "-"
        speedup = (ff != "" && t > 0) ? sprintf("%.2fx", ff / t) : "-"
        printf "%-34s %-8s %9.3f %9.1f %13.1f %9s %12s\n", f, n, t, size / 1e6 / t, rss / 1024, ratio, speedup
      }'
  done
  unset secs
done
exit "$status"
