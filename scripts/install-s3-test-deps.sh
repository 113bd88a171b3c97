#!/usr/bin/env bash
# Installs the local S3 server the storage tests and benches/s3.sh run against: moto's
# server mode (S3, and SQS for the worker tests), in a virtualenv under .test-deps/ so
# the machine's Python stays untouched. Idempotent: does nothing when the pinned
# version is already there. Non-interactive.
#
#   bash scripts/install-s3-test-deps.sh
#
# The tests find the server at .test-deps/s3-venv/bin/moto_server (or $HLSPIPE_MOTO_SERVER).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

MOTO_VERSION=5.2.5
venv=.test-deps/s3-venv
say() { printf '[s3-deps] %s\n' "$*"; }

if [[ -x "$venv/bin/moto_server" ]] &&
  [[ "$("$venv/bin/python" -c 'import moto; print(moto.__version__)' 2>/dev/null)" == "$MOTO_VERSION" ]]; then
  say "moto $MOTO_VERSION present in $venv"
  exit 0
fi

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  say "python3 with venv and ensurepip is required (Debian: apt-get install python3-venv)" >&2
  exit 1
fi
say "installing moto[server]==$MOTO_VERSION into $venv"
mkdir -p .test-deps
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "moto[server]==$MOTO_VERSION" </dev/null
"$venv/bin/moto_server" --help >/dev/null
say "ok"
