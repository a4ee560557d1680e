# lib.sh: what the TMS end-to-end scripts share (sourced; $1 = the build directory).
# A private directory with an LMK, a SQLite store, the metadata keys and a signed root; the
# real possumd running the switch, the issuer simulator and the TMS on free ports; POS
# terminals registered with the switch, initialised, signed on and provisioned for the TMS.
set -euo pipefail

build=$(cd "$1" && pwd)
possum="$build/src/app/possum"
possumd="$build/src/app/possumd"
posupd=("$possum" pos update)
work=$(mktemp -d "${TMPDIR:-/tmp}/possum-e2e-tms.XXXXXX")
export POSSUM_LMK_PASSPHRASE="e2e tms test passphrase"
cli="$work/cli.ini"
daemon_pid=""

TMK1=0123456789ABCDEFFEDCBA9876543210
TMK2=1F1F1F1F1F1F1F1F0E0E0E0E0E0E0E0E
KEK1=3B3B3B3B3B3B3B3B4C4C4C4C4C4C4C4C
KEK2=5D5D5D5D5D5D5D5D6E6E6E6E6E6E6E6E
CARD=6222020000000007
CARD_PIN=123456

cleanup() {
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then kill -KILL "$daemon_pid" 2>/dev/null || true; fi
  if [ -z "${POSSUM_E2E_KEEP:-}" ]; then rm -rf "$work"; else echo "kept: $work"; fi
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  [ -f "$work/possumd.log" ] && tail -40 "$work/possumd.log" >&2
  exit 1
}
step() { echo "--- $*"; }
# expect OUTPUT NEEDLE WHAT
expect() { grep -qF -- "$2" <<< "$1" || { echo "$1" >&2; fail "$3: expected \"$2\""; }; }
expect_not() { if grep -qF -- "$2" <<< "$1"; then echo "$1" >&2; fail "$3: did not expect \"$2\""; fi; }
kcv() { "$possum" keytool kcv --key "$1"; }

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 12000)) # below the ephemeral range, so no client takes it
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  fail "no free port"
}

# LMK, keys in the HSM, metadata keys, a signed root record published.
tms_init() {
  cat > "$cli" <<INI
[store]
backend = sqlite
path = $work/possum.db
synchronous = normal
[hsm]
lmk_file = $work/lmk.bin
audit_file = $work/hsm-audit.log
lmk_scrypt_log2n = 10
[tms]
master_key = tms.master
INI
  "$possum" hsm init -c "$cli" > /dev/null
  "$possum" hsm form -c "$cli" --label demo.zpk --usage P0 --exportable E --components \
    F891803DA162AB9D080EA162CD042A6E:D90CF3,7FB67F3BA15D4C678643F1B0B5CE8579:187918,E9495723DCE364C185F15E9BB0F76E98:E5F0FA > /dev/null
  "$possum" hsm generate -c "$cli" --label tms.master --usage K0 --mode X --exportable E > /dev/null
  "$possum" hsm form -c "$cli" --label tms.kek --usage K1 --mode E --exportable N \
    --components "$KEK1:$(kcv $KEK1),$KEK2:$(kcv $KEK2)" > /dev/null
  for k in root1 root2 root3 targets1 targets2 timestamp; do
    "$possum" tms keygen --out "$work/$k.key" > /dev/null
  done
  "$possum" tms root make --root-keys "$work/root1.key.pub,$work/root2.key.pub,$work/root3.key.pub" \
    --root-threshold 2 --targets-keys "$work/targets1.key.pub,$work/targets2.key.pub" \
    --targets-threshold 2 --timestamp-keys "$work/timestamp.key.pub" --out "$work/root.json" > /dev/null
  "$possum" tms sign --key "$work/root1.key" "$work/root.json" > /dev/null
  "$possum" tms sign --key "$work/root2.key" "$work/root.json" > /dev/null
  "$possum" tms root publish --config "$cli" "$work/root.json" > /dev/null
}

# start_daemon [EXTRA [TICK_MS]]: possumd with switch, issuer and tms (EXTRA: more [tms] keys).
fixed_switch=""; fixed_tms=""; issuer_port=""
start_daemon() {
  # the same ports across restarts (the terminals keep their configuration), all different
  if [ -z "$issuer_port" ]; then
    issuer_port=$(free_port)
    until fixed_switch=$(free_port); [ "$fixed_switch" != "$issuer_port" ]; do :; done
    until fixed_tms=$(free_port); [ "$fixed_tms" != "$issuer_port" ] && [ "$fixed_tms" != "$fixed_switch" ]; do :; done
  fi
  cat > "$work/possumd.ini" <<INI
[possumd]
node = e2e
[store]
backend = sqlite
path = $work/possum.db
synchronous = normal
[http]
listen = 127.0.0.1:0
[switch]
enabled = true
listen = 127.0.0.1:$fixed_switch
hsm_lmk_file = $work/lmk.bin
hsm_audit_file = $work/hsm-audit.log
provider_connect = 127.0.0.1:$issuer_port
cache_ttl_ms = 100
[issuer]
enabled = true
listen = 127.0.0.1:$issuer_port
seed_demo = true
hsm_lmk_file = $work/lmk.bin
hsm_audit_file = $work/hsm-audit.log
[tms]
enabled = true
listen = 127.0.0.1:$fixed_tms
hsm_lmk_file = $work/lmk.bin
hsm_audit_file = $work/hsm-audit.log
timestamp_key = $work/timestamp.key
cache_dir = $work/cache
tick_ms = ${2:-100}
auth_min_interval_ms = 0
schedule = 1d@02:00~1h
${1:-}
INI
  rm -f "$work/ports"
  "$possumd" -c "$work/possumd.ini" --ports-file "$work/ports" 2>> "$work/possumd.log" &
  daemon_pid=$!
  for _ in $(seq 1 200); do
    grep -q '^tms=' "$work/ports" 2>/dev/null && grep -q '^switch=' "$work/ports" && break
    kill -0 "$daemon_pid" 2>/dev/null || fail "possumd exited"
    sleep 0.05
  done
  grep -q '^tms=' "$work/ports" || fail "possumd did not start"
  switch_port=$(sed -n 's/^switch=.*://p' "$work/ports")
  tms_port=$(sed -n 's/^tms=.*://p' "$work/ports")
  http_port=$(sed -n 's/^http=.*://p' "$work/ports")
  sleep 0.5 # the provider link comes up
}

stop_daemon() {
  [ -n "$daemon_pid" ] || return 0
  kill -TERM "$daemon_pid"
  local rc=0; wait "$daemon_pid" || rc=$?
  daemon_pid=""
  [ "$rc" -eq 0 ] || fail "possumd exited with $rc"
}

# new_terminal TID MODEL: registered with the switch and the TMS, initialised, signed on,
# provisioned (DMK sealed by its PIN pad, the root trusted). Its directory: $work/pos-TID.
new_terminal() {
  local tid=$1 model=$2 dir="$work/pos-$1" out block kcvv
  "$possum" terminal add --config "$cli" --tid "$tid" --mid 898100000000001 --name "Shop $tid" \
    --tmk-components "$TMK1:$(kcv $TMK1),$TMK2:$(kcv $TMK2)" > /dev/null
  "$possum" pos init --data "$dir" --tid "$tid" --mid 898100000000001 --port "$switch_port" \
    --tmk-components "$TMK1:$(kcv $TMK1),$TMK2:$(kcv $TMK2)" > /dev/null
  "$possum" pos signon --data "$dir" > "$work/signon.out" 2>&1 || echo "  (sign-on of $tid refused: $(tail -1 "$work/signon.out"))"
  "$possum" tms terminal add "PP$tid" --config "$cli" --model "$model" --tid "$tid" --groups shops > /dev/null
  out=$("$possum" tms terminal provision "PP$tid" --config "$cli" --kek tms.kek)
  block=$(sed -n 's/^dmk-block: //p' <<< "$out"); kcvv=$(sed -n 's/^dmk-kcv: *//p' <<< "$out")
  "${posupd[@]}" provision --data "$dir" --tms "127.0.0.1:$tms_port" --model "$model" \
    --dmk-block "$block" --dmk-kcv "$kcvv" --kbpk-components "$KEK1:$(kcv $KEK1),$KEK2:$(kcv $KEK2)" \
    --root "$work/root.json" > /dev/null
}

# app_file VERSION SELFCHECK_STATUS: a demo POS application (a shell script).
app_file() {
  local f="$work/pos-app-$1.sh"
  cat > "$f" <<APP
#!/bin/sh
# demo POS application $1
case "\$1" in
  start) echo "$1" > "\$POSSUM_TERMINAL_DIR/apps/\$POSSUM_APP_NAME/running" ;;
  stop) rm -f "\$POSSUM_TERMINAL_DIR/apps/\$POSSUM_APP_NAME/running" ;;
  self-check) exit ${2:-0} ;;
esac
exit 0
APP
  echo "$f"
}

# publish NAME VERSION FILE [MODELS] [SIGNATURES]: a release signed offline and stored.
publish() {
  local t="$work/targets-$1-$2.json"
  "$possum" tms targets make --name "$1" --version "$2" --kind app --models "${4:-A920}" \
    --file "$3" --out "$t" > /dev/null
  "$possum" tms sign --key "$work/targets1.key" "$t" > /dev/null
  if [ "${5:-2}" -ge 2 ]; then "$possum" tms sign --key "$work/targets2.key" "$t" > /dev/null; fi
  "$possum" tms package add --config "$cli" --file "$3" --metadata "$t" > /dev/null
}

# campaign NAME PACKAGE@VERSION SERIALS: created and started.
campaign() {
  "$possum" tms campaign create "$1" --config "$cli" --package "$2" --serials "$3" > /dev/null
  "$possum" tms campaign start "$1" --config "$cli" > /dev/null
  wait_sql "SELECT current_wave > 0 FROM tms_campaign WHERE name = '$1'" 1 || fail "campaign $1: no wave opened"
}

status_of() { "$possum" tms campaign status "$1" --config "$cli"; }
# count CAMPAIGN STATE: the "all" row's count of STATE
count() {
  local col
  col=$(status_of "$1" | awk -v s="$2" '/^WAVE/ { for (i = 1; i <= NF; i++) if ($i == s) c = i } END { print c }')
  status_of "$1" | awk -v c="$col" '$1 == "all" { print $(c - 1) }'
}
signed_on() { "$possum" pos status --data "$work/pos-$1" 2>/dev/null | grep -qiE "signed on[: ]+yes"; }
running_version() { cat "$work/pos-$1/apps/pos-app/running" 2>/dev/null || echo none; }
sql() { sqlite3 -cmd ".timeout 5000" "$work/possum.db" "$1"; } # waits out the daemon's writer
# wait_for CMD...: up to 5 s; wait_sql SQL VALUE: until the query gives VALUE
wait_for() { for _ in $(seq 1 100); do if "$@"; then return 0; fi; sleep 0.05; done; return 1; }
wait_sql() { for _ in $(seq 1 100); do [ "$(sql "$1")" = "$2" ] && return 0; sleep 0.05; done; return 1; }
