#!/usr/bin/env bash
# Install the Debian packages possum's build, tests and demo need, when missing.
# Idempotent: does nothing when every package is present. Needs root or sudo for apt-get.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  libssl-dev openssl libsqlite3-dev sqlite3 libevent-dev libjansson-dev
  libinih-dev libcmocka-dev libcurl4-openssl-dev libpq-dev
  postgresql postgresql-contrib softhsm2 opensc libsofthsm2 libp11-kit-dev
  kannel kannel-extras nginx-light curl
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged services must not hold the ports our tests use; tests start their own.
for svc in nginx postgresql kannel; do
  $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
echo "deps: done"
