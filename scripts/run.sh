#!/usr/bin/env bash
# `make run`: the platform on its embedded default (etc/possum.ini, SQLite under var/) until
# Ctrl-C. The first run creates the local master key (var/lmk.bin). The LMK passphrase comes
# from POSSUM_LMK_PASSPHRASE; when it is unset, a development passphrase is used and said so:
# never run a real deployment that way.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
mkdir -p var
if [ -z "${POSSUM_LMK_PASSPHRASE:-}" ]; then
  export POSSUM_LMK_PASSPHRASE="possum-development-passphrase"
  echo "run: POSSUM_LMK_PASSPHRASE is not set: using a development passphrase (not for production)" >&2
fi
if [ ! -f var/lmk.bin ]; then
  "$build/src/app/possum" hsm init -c etc/possum.ini
fi
exec "$build/src/app/possumd" -c etc/possum.ini
