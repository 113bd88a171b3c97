#!/usr/bin/env bash
# Installs what the AWS deployment tests need beyond the Rust toolchain: cfn-lint, which
# tests/aws/deploy_template.rs runs on deploy/template.yaml, and aws-sam-translator, the SAM
# transform that `sam deploy` runs (tests/aws/sam_transform.py), in a virtualenv under .test-deps/
# so the machine's Python stays untouched. Idempotent: does nothing when the pinned version
# is already there. Non-interactive.
#
#   bash scripts/install-aws-test-deps.sh
#
# The tests find it at .test-deps/aws-venv/bin/cfn-lint (or $HLSPIPE_CFN_LINT).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CFN_LINT_VERSION=1.58.0
SAM_TRANSLATOR_VERSION=1.115.0
venv=.test-deps/aws-venv
say() { printf '[aws-deps] %s\n' "$*"; }

if [[ -x "$venv/bin/cfn-lint" ]] &&
  [[ "$("$venv/bin/cfn-lint" --version 2>/dev/null)" == *"$CFN_LINT_VERSION"* ]] &&
  [[ "$("$venv/bin/python" -c 'import samtranslator; print(samtranslator.__version__)' 2>/dev/null)" == "$SAM_TRANSLATOR_VERSION" ]]; then
  say "cfn-lint $CFN_LINT_VERSION and aws-sam-translator $SAM_TRANSLATOR_VERSION present in $venv"
  exit 0
fi

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  say "python3 with venv and ensurepip is required (Debian: apt-get install python3-venv)" >&2
  exit 1
fi
say "installing cfn-lint==$CFN_LINT_VERSION aws-sam-translator==$SAM_TRANSLATOR_VERSION into $venv"
mkdir -p .test-deps
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "cfn-lint==$CFN_LINT_VERSION" "aws-sam-translator==$SAM_TRANSLATOR_VERSION" </dev/null
"$venv/bin/cfn-lint" --version
say "ok"
