#!/usr/bin/env bash
# Installs s3s-fs, a small S3 server in Rust that keeps objects as plain files, into
# .test-deps/s3s-fs/ for benches/s3.sh. The bench uses it rather than moto because it
# serves a ranged GET by seeking in the object's file (time proportional to the range),
# as real S3 does; moto reads the whole object for every range. Idempotent: does nothing
# when the pinned version is already there. Non-interactive.
#
#   bash scripts/install-s3s-fs.sh
#
# The bench finds the server at .test-deps/s3s-fs/bin/s3s-fs.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# 0.14.1: the newest release that builds on our toolchain (Rust 1.95); 0.17 needs a newer rustc.
S3S_FS_VERSION=0.14.1
root=.test-deps/s3s-fs
bin=$root/bin/s3s-fs
say() { printf '[s3s-fs] %s\n' "$*"; }

# clap's `--version` prints "s3s-fs 0.14.1".
if [[ -x $bin ]] && [[ "$("$bin" --version 2>/dev/null)" == "s3s-fs $S3S_FS_VERSION" ]]; then
  say "s3s-fs $S3S_FS_VERSION present in $root"
  exit 0
fi

if ! command -v cargo >/dev/null; then
  say "cargo is required (the Rust toolchain)" >&2
  exit 1
fi
say "installing s3s-fs $S3S_FS_VERSION into $root (a few minutes: it is built from source)"
mkdir -p .test-deps
# The server binary sits behind the crate's `binary` feature (clap, tokio/full, hyper-util);
# without it `cargo install` finds nothing to install. --locked: the dependency versions the
# release was published with, not whatever is newest today.
cargo install --quiet --locked --root "$root" --features binary s3s-fs --version "$S3S_FS_VERSION" </dev/null
"$bin" --help >/dev/null
say "ok"
