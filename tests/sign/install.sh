#!/bin/sh
# Installs the reference CloudFront signers the cross-check tests compare against:
# botocore + cryptography (PyPI) in tests/sign/.venv, @aws-sdk/cloudfront-signer (npm) in
# tests/sign/node_modules. Idempotent: does nothing when both are already there.
# tests/delivery/sign_crosscheck.rs runs it once per test process, so `cargo test` alone works.
set -eu
cd "$(dirname "$0")"

if ! .venv/bin/python3 -c 'import botocore.signers, cryptography' 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/python3 -m pip install --quiet --disable-pip-version-check -r requirements.txt
fi

if [ ! -f node_modules/@aws-sdk/cloudfront-signer/package.json ]; then
    npm ci --silent --no-audit --no-fund
fi
