#!/usr/bin/env bash
# THE test command (README, .ci/run): installs test dependencies, lints, builds once and runs
# the whole suite. Exits non-zero at the first failure and says which section failed.
#
#   bash scripts/test.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

current="start"
section() {
  current="$*"
  printf '\n==== %s ====\n' "$*"
}
trap 'printf "\n==== FAILED: %s ====\n" "$current" >&2' ERR

section "test dependencies (scripts/install-test-deps.sh)"
bash scripts/install-test-deps.sh </dev/null
bash scripts/install-aws-test-deps.sh </dev/null

section "scripts: bash -n, shellcheck, node --check, python syntax"
shell_scripts=(.ci/run scripts/*.sh fixtures/generate.sh benches/*.sh)
for script in "${shell_scripts[@]}"; do
  bash -n "$script"
done
shellcheck "${shell_scripts[@]}"
node --check tests/player/play.mjs
for py in fixtures/corrupt/generate.py tests/aws/sam_transform.py tests/aws/iam_lint.py; do
  python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$py"
done

section "cargo fmt --check"
cargo fmt --all --check

section "cargo clippy --all-targets --locked -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The fuzzing targets (fuzz/, scripts/fuzz.sh) build the library without `service`: keep
# that build compiling and lint-clean. The targets' properties run in the suite
# (tests/harness/fuzz_inputs.rs).
section "cargo clippy --lib --no-default-features --features testing (the fuzzed core)"
cargo clippy --lib --locked --no-default-features --features testing -- -D warnings

# One build of the test profile serves every integration test: they run the binary through
# env!("CARGO_BIN_EXE_hlspipe"), never a separate release build.
if command -v cargo-nextest >/dev/null; then
  # nextest does not run doctests; run them first so the suite's summary closes the log.
  section "cargo test --doc --locked --workspace"
  cargo test --doc --locked --workspace
  section "cargo nextest run --locked --workspace"
  cargo nextest run --locked --workspace
else
  section "cargo test --locked --workspace (cargo-nextest not installed)"
  cargo test --locked --workspace
fi

section "all passed"
