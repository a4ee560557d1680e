#!/usr/bin/env bash
# demo-tms.sh: remote program update (seed 000) shown end to end, in plain words.
#
#   scripts/demo-tms.sh BUILD                  on its own: starts possumd (switch, issuer
#                                              simulator, TMS) in var/demo-tms, stops it after
#   scripts/demo-tms.sh BUILD WORK prepare     inside `make demo`, before possumd starts: the
#                                              TMS's keys, and a [tms] section appended to
#                                              WORK/possum.ini (its store and HSM are used)
#   scripts/demo-tms.sh BUILD WORK run         inside `make demo`, with possumd running from
#                                              WORK/possum.ini and its ports in WORK/ports
#
# A release is published and signed offline, a campaign reaches one terminal, the TMS asks the
# switch to flag it, the flag arrives on the terminal's next response, and the terminal checks
# in at once, authenticates (claim 4), downloads, checks the signed metadata, installs into its
# other slot, runs the self-check and reports. Exits non-zero if any step fails.
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
case "$build" in /*) ;; *) build="$top/$build" ;; esac
possum="$build/src/app/possum"
possumd="$build/src/app/possumd"
mode=${3:-standalone}
work=${2:-$top/var/demo-tms}
export POSSUM_LMK_PASSPHRASE=${POSSUM_LMK_PASSPHRASE:-demo passphrase, not a secret}

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step() { printf '   %s\n' "$*"; }
indent() { sed 's/^/     | /'; }
kcv() { "$possum" keytool kcv --key "$1"; }
quiet() { "$@" > "$work/tms-demo.log" 2>&1 || { cat "$work/tms-demo.log"; return 1; }; }

TID=10000101
SERIAL=PP$TID
TMK1=0123456789ABCDEFFEDCBA9876543210
TMK2=1F1F1F1F1F1F1F1F0E0E0E0E0E0E0E0E
KEK1=3B3B3B3B3B3B3B3B4C4C4C4C4C4C4C4C   # the factory's KBPK components (demo values)
KEK2=5D5D5D5D5D5D5D5D6E6E6E6E6E6E6E6E
CARD=6222020000000007
tmsdir="$work/tms-keys"

# The TMS's keys: the master key in the HSM, the factory KBPK, the metadata keys (the root
# and targets keys would live offline), the online timestamp key, a root of trust published.
prepare_keys() {
  local cfg=$1
  mkdir -p "$tmsdir"
  say "The operator prepares the TMS's keys"
  quiet "$possum" hsm generate -c "$cfg" --label tms.master --usage K0 --mode X --exportable E
  step "TMS master key tms.master in the HSM (derives one DMK per terminal; never leaves)."
  quiet "$possum" hsm form -c "$cfg" --label tms.kek --usage K1 --mode E --exportable N \
    --components "$KEK1:$(kcv $KEK1),$KEK2:$(kcv $KEK2)"
  step "Factory key-block protection key tms.kek formed from two custodians' components."
  for k in root1 root2 root3 targets1 targets2; do quiet "$possum" tms keygen --out "$tmsdir/$k.key"; done
  quiet "$possum" tms keygen --out "$tmsdir/timestamp.key"
  step "Ed25519 keys: 3 root keys (2 must sign), 2 targets keys (2 must sign) kept offline;"
  step "one timestamp key online, for the TMS to sign short-lived timestamp records."
  quiet "$possum" tms root make --root-keys "$tmsdir/root1.key.pub,$tmsdir/root2.key.pub,$tmsdir/root3.key.pub" \
    --root-threshold 2 --targets-keys "$tmsdir/targets1.key.pub,$tmsdir/targets2.key.pub" \
    --targets-threshold 2 --timestamp-keys "$tmsdir/timestamp.key.pub" --out "$tmsdir/root.json"
  quiet "$possum" tms sign --key "$tmsdir/root1.key" "$tmsdir/root.json"
  quiet "$possum" tms sign --key "$tmsdir/root2.key" "$tmsdir/root.json"
  "$possum" tms root publish --config "$cfg" "$tmsdir/root.json" 2> /dev/null | sed 's/^/   /'
}

tms_section() {
  cat <<INI

; The terminal management system (docs/tms.md): added by scripts/demo-tms.sh
[tms]
enabled = true
listen = 127.0.0.1:0
timestamp_key = $tmsdir/timestamp.key
cache_dir = $work/tms-cache
tick_ms = 200
schedule = 1d@02:00+08:00~1h
$1
INI
}

# The whole show against a running possumd (config $1, ports file $2).
run_demo() {
  local cfg=$1 ports=$2 switch_port tms_port http_addr out block kcvv dir="$work/pos-$TID"
  for _ in $(seq 1 300); do grep -q '^tms=' "$ports" 2>/dev/null && break; sleep 0.1; done
  switch_port=$(sed -n 's/^switch=.*://p' "$ports")
  tms_port=$(sed -n 's/^tms=.*://p' "$ports")
  http_addr=$(sed -n 's/^http=//p' "$ports")
  [ -n "$tms_port" ] || { echo "demo-tms: possumd runs no tms service (no tms= in $ports)"; exit 1; }

  say "A terminal leaves the factory: registered, its DMK sealed in its PIN pad"
  quiet "$possum" terminal add --config "$cfg" --tid $TID --mid 898100000000001 --name "Demo shop" \
    --tmk-components "$TMK1:$(kcv $TMK1),$TMK2:$(kcv $TMK2)"
  rm -rf "$dir"
  quiet "$possum" pos init --data "$dir" --tid $TID --mid 898100000000001 --port "$switch_port" \
    --tmk-components "$TMK1:$(kcv $TMK1),$TMK2:$(kcv $TMK2)"
  step "Terminal $TID (PIN pad $SERIAL) registered with the transaction platform."
  quiet "$possum" tms terminal add $SERIAL --config "$cfg" --model A920 --tid $TID --groups demo
  out=$("$possum" tms terminal provision $SERIAL --config "$cfg" --kek tms.kek 2> /dev/null)
  block=$(sed -n 's/^dmk-block: //p' <<< "$out"); kcvv=$(sed -n 's/^dmk-kcv: *//p' <<< "$out")
  step "The TMS derives its DMK (master key + serial number) and exports it as a TR-31 block"
  step "under the factory KBPK: ${block:0:40}... (check value $kcvv)"
  "$possum" pos update provision --data "$dir" --tms "127.0.0.1:$tms_port" --model A920 \
    --dmk-block "$block" --dmk-kcv "$kcvv" --kbpk-components "$KEK1:$(kcv $KEK1),$KEK2:$(kcv $KEK2)" \
    --root "$tmsdir/root.json" | sed 's/^/   /'
  if "$possum" pos signon --data "$dir" > "$work/signon.out" 2>&1; then signed=1; else signed=0; fi

  say "A release: pos-app 1.0.0, signed offline by two targets keys"
  cat > "$work/pos-app-1.0.0.sh" <<'APP'
#!/bin/sh
# the demo POS application 1.0.0: start, stop, self-check
case "$1" in
  start) echo "pos-app $POSSUM_APP_VERSION running" > "$POSSUM_TERMINAL_DIR/apps/$POSSUM_APP_NAME/running" ;;
  stop) rm -f "$POSSUM_TERMINAL_DIR/apps/$POSSUM_APP_NAME/running" ;;
  self-check) test -x "$POSSUM_APP_DIR/program" ;;
esac
APP
  quiet "$possum" tms targets make --name pos-app --version 1.0.0 --kind app --models A920 \
    --file "$work/pos-app-1.0.0.sh" --out "$work/pos-app-1.0.0.json"
  quiet "$possum" tms sign --key "$tmsdir/targets1.key" "$work/pos-app-1.0.0.json"
  quiet "$possum" tms sign --key "$tmsdir/targets2.key" "$work/pos-app-1.0.0.json"
  "$possum" tms package add --config "$cfg" --file "$work/pos-app-1.0.0.sh" \
    --metadata "$work/pos-app-1.0.0.json" 2> /dev/null | sed 's/^/   /'

  say "A campaign reaches the terminal; the TMS asks the switch to flag it"
  quiet "$possum" tms campaign create demo --config "$cfg" --package pos-app@1.0.0 --serials $SERIAL
  "$possum" tms campaign start demo --config "$cfg" 2> /dev/null | head -1 | sed 's/^/   /'
  for _ in $(seq 1 50); do
    "$possum" terminal show $TID --config "$cfg" 2> /dev/null | grep -q "update waiting *yes" && break
    sleep 0.1
  done
  "$possum" terminal show $TID --config "$cfg" 2> /dev/null | grep "update waiting" | sed 's/^/   switch: /'

  if [ "$signed" = 1 ]; then
    say "The terminal's next transaction: a purchase; its response carries the flag"
    "$possum" pos purchase --data "$dir" --amount 1234 --card $CARD --pin 123456 | sed 's/^/   /' || true
    "$possum" pos settle --data "$dir" > /dev/null 2>&1 || true
  else
    say "The terminal's next exchange: a sign-on; its response carries the flag"
    step "(the PIN pad refused this switch's work keys, so no purchase here: $(tail -1 "$work/signon.out"))"
    "$possum" pos signon --data "$dir" 2>&1 | sed 's/^/   /' || true
  fi
  step "The response header's processing requirement was 6: an update waits at the TMS."

  say "The terminal checks in at once: authenticates, downloads, verifies, installs, reports"
  "$possum" pos update auto --data "$dir" | sed 's/^/   /'
  step "Now running: $(cat "$dir/apps/pos-app/running")"

  say "What the operator sees"
  for _ in $(seq 1 30); do   # the campaign completes at the TMS's next tick
    "$possum" tms campaign status demo --config "$cfg" 2> /dev/null | grep -q completed && break
    sleep 0.1
  done
  "$possum" tms campaign status demo --config "$cfg" 2> /dev/null | sed 's/^/   /'
  "$possum" tms terminal show $SERIAL --config "$cfg" 2> /dev/null | sed 's/^/   /'
  [ -n "$http_addr" ] && curl -fsS "http://$http_addr/metrics" | grep -E '^possum_tms_(checkins|authentications|download_requests|reports)' | sed 's/^/   /'
  grep -q "running" "$dir/apps/pos-app/running"
}

case "$mode" in
  prepare)
    [ -f "$work/possum.ini" ] || { echo "demo-tms: no $work/possum.ini"; exit 1; }
    prepare_keys "$work/possum.ini"
    grep -q '^\[tms\]' "$work/possum.ini" || tms_section "" >> "$work/possum.ini"
    step "[tms] section added to $work/possum.ini."
    ;;
  run)
    run_demo "$work/possum.ini" "$work/ports"
    ;;
  standalone)
    rm -rf "$work"; mkdir -p "$work"
    pid=""
    trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true' EXIT
    port() { for _ in $(seq 1 50); do p=$((20000 + RANDOM % 12000)); (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo $p; return; }; done; }
    issuer_port=$(port)
    cat > "$work/cli.ini" <<INI
[store]
path = $work/possum.db
synchronous = normal
[hsm]
lmk_file = $work/lmk.bin
audit_file = $work/hsm-audit.log
lmk_scrypt_log2n = 12
INI
    say "Starting the platform: switch, issuer simulator and TMS (possumd, SQLite in $work)"
    quiet "$possum" hsm init -c "$work/cli.ini"
    quiet "$possum" hsm form -c "$work/cli.ini" --label demo.zpk --usage P0 --exportable E --components \
      F891803DA162AB9D080EA162CD042A6E:D90CF3,7FB67F3BA15D4C678643F1B0B5CE8579:187918,E9495723DCE364C185F15E9BB0F76E98:E5F0FA
    prepare_keys "$work/cli.ini"
    hsm="hsm_lmk_file = $work/lmk.bin
hsm_audit_file = $work/hsm-audit.log"
    cat > "$work/possumd.ini" <<INI
[possumd]
node = demo
[store]
path = $work/possum.db
synchronous = normal
[http]
listen = 127.0.0.1:0
[switch]
enabled = true
listen = 127.0.0.1:0
provider_connect = 127.0.0.1:$issuer_port
cache_ttl_ms = 100
$hsm
[issuer]
enabled = true
listen = 127.0.0.1:$issuer_port
seed_demo = true
$hsm
INI
    tms_section "$hsm" >> "$work/possumd.ini"
    "$possumd" -c "$work/possumd.ini" --ports-file "$work/ports" 2> "$work/possumd.log" &
    pid=$!
    for _ in $(seq 1 100); do grep -q '^tms=' "$work/ports" 2>/dev/null && break; sleep 0.1; done
    grep -q '^tms=' "$work/ports" || { cat "$work/possumd.log"; echo "possumd did not start"; exit 1; }
    sleep 0.5
    grep -E 'listening|ready' "$work/possumd.log" | sed 's/.*\] /     | /'
    run_demo "$work/cli.ini" "$work/ports"
    say "Stopping the platform"
    kill -TERM "$pid"; wait "$pid"; rc=$?; pid=""
    step "possumd exited with status $rc."
    [ "$rc" -eq 0 ]
    say "Remote program update shown end to end over real sockets."
    ;;
  *) echo "usage: $0 BUILD [WORK prepare|run]"; exit 2 ;;
esac
