#!/usr/bin/env bash
# `make run`: the platform on its embedded default until Ctrl-C.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
mkdir -p var
exec "$build/src/app/possumd" -c etc/possum.ini
