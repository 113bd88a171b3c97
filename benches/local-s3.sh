# shellcheck shell=bash
# Sourced by the benches that talk S3 to a local server: an s3s-fs (scripts/install-s3s-fs.sh)
# on a free port of 127.0.0.1, keeping each object as a file under a folder of its own.

# A free TCP port of 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something answers HTTP on 127.0.0.1:PORT (s3s-fs says 403 to an unsigned
# request: any answer will do), for a minute at most.
wait_listening() {
  local port=$1
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0
    sleep 0.2
  done
  echo "nothing listens on 127.0.0.1:$port" >&2
  return 1
}

# start_s3s_fs FOLDER LOG: installs s3s-fs if needed, empties FOLDER, starts the server on
# it with the access key `bench` and the secret `bench-secret`, and waits until it listens.
# Sets s3s_fs_port and s3s_fs_pid; the caller stops it (kill "$s3s_fs_pid").
# shellcheck disable=SC2034 # both are for the sourcing script
start_s3s_fs() {
  local folder=$1 log=$2
  bash scripts/install-s3s-fs.sh >/dev/null
  rm -rf "$folder" && mkdir -p "$folder"
  s3s_fs_port=$(free_port)
  .test-deps/s3s-fs/bin/s3s-fs --host 127.0.0.1 --port "$s3s_fs_port" --access-key bench \
    --secret-key bench-secret "$folder" >/dev/null 2>"$log" &
  s3s_fs_pid=$!
  wait_listening "$s3s_fs_port"
}

# use_s3s_fs FOLDER LOG: start_s3s_fs, then this shell's AWS settings point at it (the key
# and secret it checks; no instance metadata) and the hlspipe settings a bench must not
# inherit are cleared. stop_s3s_fs stops it and removes FOLDER (for an EXIT trap).
use_s3s_fs() {
  s3s_fs_folder=$1
  start_s3s_fs "$1" "$2"
  export AWS_ENDPOINT_URL="http://127.0.0.1:$s3s_fs_port" AWS_ACCESS_KEY_ID=bench
  export AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  unset HLSPIPE_STORE HLSPIPE_LADDER
}

# shellcheck disable=SC2317 # called by an EXIT trap
stop_s3s_fs() {
  kill "$s3s_fs_pid" 2>/dev/null || true
  wait "$s3s_fs_pid" 2>/dev/null || true
  rm -rf "$s3s_fs_folder"
}
