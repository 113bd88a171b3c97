#!/usr/bin/env bash
# Edge and playback API throughput, with wrk:
#   1. segment GETs through the edge with valid signed cookies (`hlspipe serve`);
#   2. the same edge with the signature check off (`--unsigned-edge-for-benchmarks`): the
#      reference, so the difference is what CloudFront-style checking costs. Target: (1) is at
#      least 80 % of (2);
#   3. the same files from nginx (sendfile, from apt), for scale: what a C static server does on
#      this machine;
#   4. API cookie issuance per second (GET /v1/titles/<title>/playback with a bearer token).
# Two titles: the test fixture (~120 kB segments: request-bound) and a 1080p 20 Mb/s one
# (~15 MB segments: byte-bound, streamed in 256 kB chunks). Access logs are off everywhere.
#
#   bash benches/edge.sh                          # 3 rounds of 5 s runs, 16 connections
#   BENCH_DURATION=2 BENCH_ROUNDS=1 bash benches/edge.sh   # quick check
#   BENCH_CONNECTIONS=64 …
#
# The machine is shared (other builds come and go), so each round runs the three servers one
# after the other, the order rotating between rounds, and the median of the rounds is shown.
#
# Installs wrk and nginx-light with apt when missing (as root). Data goes to bench-data/edge/
# (gitignored); servers listen on 127.0.0.1 only and are stopped on exit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION="${BENCH_DURATION:-5}"
ROUNDS="${BENCH_ROUNDS:-3}"
CONNS="${BENCH_CONNECTIONS:-16}"
DATA="$PWD/bench-data/edge"
TOKEN=bench-token-0123456789abcdef
KEY_ID=K2EDGEBENCH
KEY=fixtures/keys/rsa2048.pkcs1.pem

say() { printf '[edge-bench] %s\n' "$*" >&2; }

# ---- tools ----------------------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    say "missing ${need[*]}: run as root or install them" && exit 1
  fi
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" </dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

say "cargo build --release --locked"
cargo build --release --locked --quiet
HLSPIPE=target/release/hlspipe

# ---- data -----------------------------------------------------------------------------------
mkdir -p "$DATA"
BUCKET="$DATA/store/media"
if [[ ! -s "$BUCKET/hls/bench/small/master.m3u8" ]]; then
  "$HLSPIPE" package fixtures/media/h264_aac_faststart.mp4 "$BUCKET/hls/bench/small" >/dev/null
fi
if [[ ! -s "$BUCKET/hls/bench/big/master.m3u8" ]]; then
  big_input="$DATA/testsrc2_1080p30_12s.mp4"
  if [[ ! -s "$big_input" ]]; then
    say "making $big_input (once)"
    nice ffmpeg -nostdin -hide_banner -loglevel error -y \
      -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=12" \
      -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=12" \
      -c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 180 \
      -b:v 20M -maxrate 20M -bufsize 40M \
      -c:a aac -b:a 128k -ac 2 -movflags +faststart "$big_input.partial.mp4"
    mv "$big_input.partial.mp4" "$big_input"
  fi
  "$HLSPIPE" package "$big_input" "$BUCKET/hls/bench/big" >/dev/null
fi

# ---- servers --------------------------------------------------------------------------------
pids=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# start_serve NAME [ARGS...]: starts hlspipe serve on a free port; sets PORT.
start_serve() {
  local name=$1 log="$DATA/$1.stderr"
  shift
  HLSPIPE_LOG=warn "$HLSPIPE" serve --listen 127.0.0.1:0 --store "file://$DATA/store" \
    --key-pair-id "$KEY_ID" --private-key "$KEY" --token "$TOKEN" --access-log off --edge "$@" \
    2>"$log" &
  pids+=($!)
  for _ in $(seq 100); do
    PORT="$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$log")"
    [[ -n "$PORT" ]] && return
    sleep 0.1
  done
  say "$name did not start: $(cat "$log")" && exit 1
}

start_serve signed
SIGNED_PORT=$PORT
start_serve unsigned --unsigned-edge-for-benchmarks
UNSIGNED_PORT=$PORT

NGINX_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
abs_data="$(cd "$DATA" && pwd)"
mkdir -p "$DATA/nginx"
cat >"$DATA/nginx/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 2;
pid $abs_data/nginx/nginx.pid;
error_log $abs_data/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path $abs_data/nginx/body;
  proxy_temp_path $abs_data/nginx/proxy;
  fastcgi_temp_path $abs_data/nginx/fastcgi;
  uwsgi_temp_path $abs_data/nginx/uwsgi;
  scgi_temp_path $abs_data/nginx/scgi;
  types { application/vnd.apple.mpegurl m3u8; video/mp4 m4s mp4; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $abs_data/store/media;
  }
}
EOF
"$NGINX" -p "$abs_data/nginx" -c "$abs_data/nginx/nginx.conf" &
pids+=($!)
sleep 0.5

# ---- requests -------------------------------------------------------------------------------
# cookie_header TITLE: the API's cookies for the title, as a Cookie request header.
cookie_header() {
  curl -fsS -D - -o /dev/null -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$SIGNED_PORT/v1/titles/bench/$1/playback" |
    tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | paste -sd ';' - | sed 's/;/; /g'
}

# lua TITLE COOKIE: a wrk script cycling through every segment of the title.
lua() {
  local file="$DATA/$1.lua"
  {
    printf 'local paths = {\n'
    (cd "$BUCKET" && find "hls/bench/$1" -name '*.m4s' | sort | sed 's|.*|  "/&",|')
    printf '}\nlocal i = 0\nwrk.headers["Cookie"] = "%s"\n' "$2"
    printf 'request = function()\n  i = i %% #paths + 1\n  return wrk.format("GET", paths[i])\nend\n'
  } >"$file"
  echo "$file"
}

# run PORT SCRIPT [ARGS...]: "requests/s MB/s" from wrk.
run() {
  local port=$1 script=$2 out
  shift 2
  out="$(wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$script" "$@" "http://127.0.0.1:$port" 2>&1)"
  if grep -q 'Non-2xx' <<<"$out"; then
    say "non-2xx answers on port $port:" && echo "$out" >&2 && exit 1
  fi
  awk '/^Requests\/sec/ {r=$2} /^Transfer\/sec/ {t=$2; u=t; sub(/[0-9.]+/, "", u); sub(/[A-Za-z]+$/, "", t);
       if (u=="KB") t/=1024; if (u=="GB") t*=1024; if (u=="B") t/=1048576} END {printf "%.0f %.1f\n", r, t}' <<<"$out"
}

# median of the arguments (numbers)
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

printf '\n%-7s %-28s %12s %10s   (median of %s rounds of %s s, %s connections)\n' \
  title server 'requests/s' 'MB/s' "$ROUNDS" "$DURATION" "$CONNS"
status=0
servers=(signed unsigned nginx)
declare -A port=([signed]=$SIGNED_PORT [unsigned]=$UNSIGNED_PORT [nginx]=$NGINX_PORT)
declare -A label=([signed]="edge, signed cookies" [unsigned]="edge, checks off" [nginx]="nginx (sendfile)")
for title in small big; do
  cookie="$(cookie_header "$title")"
  [[ "$cookie" == *CloudFront-Signature* ]] || { say "no cookies from the API for $title"; exit 1; }
  script="$(lua "$title" "$cookie")"
  declare -A rps=() mbs=()
  for ((round = 0; round < ROUNDS; round++)); do
    for ((k = 0; k < 3; k++)); do
      server=${servers[$(((k + round) % 3))]}
      read -r r m < <(run "${port[$server]}" "$script")
      rps[$server]+="$r "
      mbs[$server]+="$m "
    done
  done
  declare -A med=()
  for server in "${servers[@]}"; do
    # shellcheck disable=SC2086 # word-split the list of figures on purpose
    med[$server]=$(median ${rps[$server]})
    # shellcheck disable=SC2086
    printf '%-7s %-28s %12s %10s   rounds: %s\n' "$title" "${label[$server]}" "${med[$server]}" \
      "$(median ${mbs[$server]})" "${rps[$server]}"
  done
  ratio=$(awk -v a="${med[signed]}" -v b="${med[unsigned]}" 'BEGIN {printf "%.0f", 100 * a / b}')
  vs_nginx=$(awk -v a="${med[signed]}" -v b="${med[nginx]}" 'BEGIN {printf "%.0f", 100 * a / b}')
  verdict=met
  ((ratio >= 80)) || { verdict=MISSED; status=1; }
  printf '%-7s signed/unchecked = %s %% (target >= 80 %%: %s); signed/nginx = %s %%\n\n' \
    "$title" "$ratio" "$verdict" "$vs_nginx"
  unset rps mbs med
done

api_script="$DATA/api.lua"
printf 'wrk.headers["Authorization"] = "Bearer %s"\nwrk.path = "/v1/titles/bench/small/playback"\n' "$TOKEN" >"$api_script"
read -r a_rps _ < <(run "$SIGNED_PORT" "$api_script")
printf 'API     cookie issuance (cached per title and minute): %s requests/s\n' "$a_rps"
exit "$status"
