#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain. Idempotent: checks first, installs
# only what is missing, runs `apt-get update` only when there is something to install.
# Non-interactive (no TTY, no stdin); run as root, as on CI and the developer machines.
#
#   bash scripts/install-test-deps.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

say() { printf '[deps] %s\n' "$*"; }

# ---- Debian packages --------------------------------------------------------------------------
# ffmpeg/ffprobe: make fixtures, check every output decodes. chromium: hls.js playback tests.
# time: /usr/bin/time -v for peak RSS in benches/. shellcheck: scripts/test.sh lints the scripts.
APT_PACKAGES=(ffmpeg chromium time shellcheck)

installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    say "missing Debian packages: ${missing[*]} (run this script as root)" >&2
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  # Other jobs on the machine may hold the dpkg lock: wait for it rather than fail.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" </dev/null
else
  say "Debian packages present: ${APT_PACKAGES[*]}"
fi

# ---- Node packages for tests/player (hls.js, playwright-core) --------------------------------
# Node >= 20 comes with the machine (playwright-core needs it; Debian 12's nodejs is 18).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "node and npm are required (>= 20) for tests/player" >&2
  exit 1
fi
player=tests/player
stamp="$player/node_modules/.hlspipe-lock.sha256"
want="$(sha256sum "$player/package-lock.json" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$player/node_modules/hls.js/dist/hls.min.js" ]]; then
  say "tests/player/node_modules up to date"
else
  say "npm ci in tests/player"
  (cd "$player" && npm ci --no-audit --no-fund --loglevel=error </dev/null)
  printf '%s\n' "$want" >"$stamp"
fi

# ---- Python and npm packages of other test groups ----------------------------------------------
# Installed here, once, before the suite starts: nextest runs tests in parallel processes, and
# several of them installing into the same folder at once would race.
say "reference CloudFront signers (tests/sign/install.sh: botocore, @aws-sdk/cloudfront-signer)"
sh tests/sign/install.sh </dev/null
say "moto S3 server (scripts/install-s3-test-deps.sh)"
bash scripts/install-s3-test-deps.sh </dev/null

say "ok"
