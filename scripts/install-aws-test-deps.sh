#!/usr/bin/env bash
# Installs what the AWS deployment tests need beyond the Rust toolchain: cfn-lint, which
# tests/aws/deploy_template.rs runs on deploy/template.yaml, and aws-sam-translator, the SAM
# transform that `sam deploy` runs (tests/aws/sam_transform.py), in a virtualenv under .test-deps/
# so the machine's Python stays untouched; and the scanners, checkov (an IaC scanner) and
# parliament (an IAM policy linter), in a virtualenv of their own (checkov pins its
# dependencies tightly). Idempotent: does nothing when the pinned versions are already
# there. Non-interactive.
#
#   bash scripts/install-aws-test-deps.sh
#
# The tests find it at .test-deps/aws-venv/bin/cfn-lint (or $HLSPIPE_CFN_LINT).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CFN_LINT_VERSION=1.58.0
SAM_TRANSLATOR_VERSION=1.115.0
CHECKOV_VERSION=3.3.30
PARLIAMENT_VERSION=1.6.4
venv=.test-deps/aws-venv
scan_venv=.test-deps/scan-venv
say() { printf '[aws-deps] %s\n' "$*"; }

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  say "python3 with venv and ensurepip is required (Debian: apt-get install python3-venv)" >&2
  exit 1
fi

if [[ "$("$scan_venv/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"), m.version("parliament"))' 2>/dev/null)" == "$CHECKOV_VERSION $PARLIAMENT_VERSION" ]]; then
  say "checkov $CHECKOV_VERSION and parliament $PARLIAMENT_VERSION present in $scan_venv"
else
  say "installing checkov==$CHECKOV_VERSION parliament==$PARLIAMENT_VERSION into $scan_venv"
  mkdir -p .test-deps
  [[ -x "$scan_venv/bin/python" ]] || python3 -m venv "$scan_venv"
  "$scan_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "checkov==$CHECKOV_VERSION" "parliament==$PARLIAMENT_VERSION" </dev/null
  "$scan_venv/bin/checkov" --version
fi

if [[ -x "$venv/bin/cfn-lint" ]] &&
  [[ "$("$venv/bin/cfn-lint" --version 2>/dev/null)" == *"$CFN_LINT_VERSION"* ]] &&
  [[ "$("$venv/bin/python" -c 'import samtranslator; print(samtranslator.__version__)' 2>/dev/null)" == "$SAM_TRANSLATOR_VERSION" ]]; then
  say "cfn-lint $CFN_LINT_VERSION and aws-sam-translator $SAM_TRANSLATOR_VERSION present in $venv"
  exit 0
fi

say "installing cfn-lint==$CFN_LINT_VERSION aws-sam-translator==$SAM_TRANSLATOR_VERSION into $venv"
mkdir -p .test-deps
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "cfn-lint==$CFN_LINT_VERSION" "aws-sam-translator==$SAM_TRANSLATOR_VERSION" </dev/null
"$venv/bin/cfn-lint" --version
say "ok"
