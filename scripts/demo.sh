#!/usr/bin/env bash
# `make demo`: the whole platform on its embedded default (SQLite), each flow in plain words.
# Starts possumd on free ports in a scratch directory under var/demo, talks to it as a
# terminal and as an operator would, then stops it cleanly. Exits non-zero if any step fails.
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
possum="$top/$build/src/app/possum"
possumd="$top/$build/src/app/possumd"
work="$top/var/demo"
rm -rf "$work"; mkdir -p "$work"

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step() { printf '   %s\n' "$*"; }

cleanup() {
  if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

sed -e "s#^path = .*#path = $work/possum.db#" \
    -e "s#^listen = 127.0.0.1:[0-9]*#listen = 127.0.0.1:0#" \
    "$top/etc/possum.ini" > "$work/possum.ini"

say "1. Starting the platform (possumd, SQLite store in $work)"
"$possumd" -c "$work/possum.ini" --ports-file "$work/ports" 2> "$work/possumd.log" &
pid=$!
for _ in $(seq 1 100); do
  grep -q '^switch=' "$work/ports" 2>/dev/null && grep -q '^http=' "$work/ports" && break
  sleep 0.1
done
grep -q '^switch=' "$work/ports" || { cat "$work/possumd.log"; echo "possumd did not start"; exit 1; }
switch_addr=$(sed -n 's/^switch=//p' "$work/ports"); switch_port=${switch_addr##*:}
http_addr=$(sed -n 's/^http=//p' "$work/ports")
step "possumd is running as process $pid. What it said when it started:"
grep -E 'starting|listening|ready' "$work/possumd.log" | sed 's/^/     | /'
step "The transaction platform (switch) takes terminals' ISO 8583 messages on $switch_addr."
step "The operator endpoint is http://$http_addr (health and Prometheus metrics)."

say "2. The operator asks whether the platform is healthy"
step "GET /healthz -> $(curl -fsS "http://$http_addr/healthz")"

say "3. A terminal runs its echo test with the platform (ISO 8583 0800 -> 0810)"
"$possum" pos echo --port "$switch_port" --tid 10000001 --stan 000001 --verbose | sed 's/^/   /'

say "4. A broken message: the platform answers 'format error' (code 30) and keeps serving"
printf '\x00\x17\x60\x00\x01\x00\x02\x60\x31\x00\x31\x00\x00\x02\x00\x40\x00\x00\x00\x00\x00\x00\x00\x99\x12' \
  > "$work/bad.bin"
step "A terminal sends a purchase (0200) whose card number claims 99 digits (at most 19)."
exec 3<>"/dev/tcp/127.0.0.1/$switch_port"
cat "$work/bad.bin" >&3
len_hex=$(timeout 5 dd bs=1 count=2 <&3 2>/dev/null | od -An -tx1 | tr -d ' \n')
body_hex=$(timeout 5 dd bs=1 count=$((16#$len_hex)) <&3 2>/dev/null | od -An -tx1 | tr -d ' \n')
exec 3<&-
step "The platform's answer, field by field:"
"$possum" iso8583 dump "$len_hex$body_hex" | sed 's/^/     /'
step "Its log says why: $(grep 'format error' "$work/possumd.log" | tail -1 | sed 's/.*\[switch\] //')"
step "The platform still answers the next terminal:"
"$possum" pos echo --port "$switch_port" --tid 10000002 --stan 000003 | sed 's/^/   /'

say "5. What the operator sees in the metrics"
curl -fsS "http://$http_addr/metrics" | grep -E '^possum_(switch|net_frames)' | sed 's/^/   /'

say "6. Stopping the platform (SIGTERM: drain, then exit)"
kill -TERM "$pid"
wait "$pid"; rc=$?
pid=""
grep -E 'draining|drained|stopped' "$work/possumd.log" | sed 's/^/     | /'
step "possumd exited with status $rc."
[ "$rc" -eq 0 ]
say "Demo finished: every step above ran against the real daemon over real sockets."
