#!/usr/bin/env bash
# `make demo`: the whole platform on its embedded default (SQLite), each flow in plain words.
# Everything runs in a scratch directory (var/demo): an LMK, a Kannel SMS gateway with a fake
# SMSC, and one possumd running the transaction platform, the provider simulator and
# mobile-number payment. A terminal, a payee and an operator then use it as people would.
# Exits non-zero if any step does not do what it says.
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
possum="$top/$build/src/app/possum"
possumd="$top/$build/src/app/possumd"
work="$top/var/demo"

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step() { printf '   %s\n' "$*"; }
indent() { sed 's/^/     /'; }
fail() { echo "demo: $*" >&2; [ -f "$work/possumd.log" ] && tail -30 "$work/possumd.log" >&2; exit 1; }

cleanup() {
  if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  [ -d "$work/kannel" ] && bash "$top/scripts/kannel-test.sh" stop "$work/kannel" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# A free TCP port on the loopback (nothing answers a connect to it), below Linux's
# ephemeral range (32768-60999) where port-0 listeners and outgoing connections take theirs.
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 12000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  fail "no free port"
}

# The newest SMS fakesmsc received for number $1: "Got message N: <from to ucs-2 DATA>",
# DATA being URL-encoded UCS-2 (big-endian), turned into UTF-8.
sms_for() {
  local line data
  line=$(grep -a "Got message .* $1 ucs-2 " "$work/kannel/fakesmsc.log" 2>/dev/null | tail -1) || true
  [ -n "$line" ] || return 1
  data=${line##* ucs-2 }; data=${data%>}
  printf '%s' "$data" | perl -pe 's/%([0-9A-Fa-f]{2})/chr(hex($1))/ge' | iconv -f UCS-2BE -t UTF-8
}

wait_sms() { # number, text it must contain
  for _ in $(seq 1 100); do
    sms_for "$1" 2>/dev/null | grep -q "$2" && { sms_for "$1"; return 0; }
    sleep 0.1
  done
  fail "no SMS to $1 containing '$2'"
}

rm -rf "$work"; mkdir -p "$work"
export POSSUM_LMK_PASSPHRASE="${POSSUM_LMK_PASSPHRASE:-possum-demo-passphrase-not-for-production}"
today=$(date -u +%Y-%m-%d)

say "0. Setting up: a local master key, an SMS gateway, the configuration"
cfg="$work/possum.ini"
issuer_port=$(free_port)
sed -e "s#var/#$work/var/#" \
    -e "s#^listen = 127.0.0.1:5000#listen = 127.0.0.1:0#" \
    -e "s#^listen = 127.0.0.1:8080#listen = 127.0.0.1:0#" \
    -e "s#^api_listen = .*#api_listen = 127.0.0.1:0#" \
    -e "s#127.0.0.1:5100#127.0.0.1:$issuer_port#" \
    "$top/etc/possum.ini" > "$cfg"
"$possum" hsm init -c "$cfg" 2>/dev/null | indent
step "(the LMK passphrase comes from POSSUM_LMK_PASSPHRASE; the demo sets a throwaway one)"
kp=($(free_port) $(free_port) $(free_port) $(free_port))
bash "$top/scripts/kannel-test.sh" start "$work/kannel" "${kp[@]}" > /dev/null \
  || fail "Kannel did not start (see $work/kannel)"
# shellcheck disable=SC1091
. "$work/kannel/kannel.env"
sed -i "s#^sms_url = .*#sms_url = $KANNEL_SENDSMS_URL#" "$cfg"
export POSSUM_SMS_PASSWORD="$KANNEL_PASSWORD"
step "Kannel (bearerbox + smsbox) is up, with fakesmsc standing in for the operator's SMSC."

say "1. Starting the platform (possumd, SQLite store in $work/var)"
"$possumd" -c "$cfg" --ports-file "$work/ports" 2> "$work/possumd.log" &
pid=$!
for _ in $(seq 1 200); do grep -q '^switch=' "$work/ports" 2>/dev/null && break; sleep 0.1; done
grep -q '^switch=' "$work/ports" || fail "possumd did not start"
port_of() { sed -n "s/^$1=127.0.0.1://p" "$work/ports"; }
sw=$(port_of switch); http=$(port_of http); api=$(port_of phonepay)
step "possumd is running as process $pid. What it said when it started:"
grep -E 'listening on|ready' "$work/possumd.log" | grep possumd | sed 's/.*\] /     | /'
step "Terminals reach the transaction platform (switch) at 127.0.0.1:$sw (ISO 8583, UnionPay POS)."
step "The provider simulator (issuer) takes the switch's ISO 8583:1987 link at 127.0.0.1:$issuer_port."
step "Payees use the mobile-number payment API at http://127.0.0.1:$api; operators http://127.0.0.1:$http."

say "2. The operator asks whether the platform is healthy"
step "GET /healthz -> $(curl -fsS "http://127.0.0.1:$http/healthz")"

say "3. A terminal runs its echo test (ISO 8583 0800 -> 0810)"
"$possum" pos echo --port "$sw" --tid 10000009 --stan 000001 --verbose | indent

say "4. A broken message: the platform answers 'format error' (code 30) and keeps serving"
printf '\x00\x17\x60\x00\x01\x00\x02\x60\x31\x00\x31\x00\x00\x02\x00\x40\x00\x00\x00\x00\x00\x00\x00\x99\x12' \
  > "$work/bad.bin"
step "A terminal sends a purchase (0200) whose card number claims 99 digits (at most 19)."
exec 3<>"/dev/tcp/127.0.0.1/$sw"
cat "$work/bad.bin" >&3
len_hex=$(timeout 5 dd bs=1 count=2 <&3 2>/dev/null | od -An -tx1 | tr -d ' \n')
body_hex=$(timeout 5 dd bs=1 count=$((16#$len_hex)) <&3 2>/dev/null | od -An -tx1 | tr -d ' \n')
exec 3<&-
step "The platform's answer, field by field:"
"$possum" iso8583 dump "$len_hex$body_hex" | indent
step "Its log says why: $(grep 'format error' "$work/possumd.log" | tail -1 | sed 's/.*\[switch\] //')"

say "5. A merchant's terminal: registered, keyed, signed on, then purchases"
tmk="0123456789ABCDEFFEDCBA9876543210:08D7B4,1F1F1F1F1F1F1F1F0E0E0E0E0E0E0E0E:22CAE3"
step "The operator registers terminal 10000001 and forms its master key from two components"
step "held by two custodians (dual control); the platform keeps it only as a key block:"
"$possum" terminal add --config "$cfg" --tid 10000001 --mid 898100000000001 \
  --name "Possum Coffee" --tmk-components "$tmk" 2>/dev/null | indent
pos() { "$possum" pos --data "$work/var/pos/10000001" --port "$sw" --tid 10000001 "$@"; }
step "The same two components are loaded into the terminal's PIN pad:"
pos init --tmk-components "$tmk" | indent
step "Sign-on: fresh PIN, MAC and data keys arrive encrypted under the TMK (field 62):"
pos signon | indent
step "张三 buys a coffee for 12.34 CNY with card 6222 0200 0000 0007 and PIN 123456:"
pos purchase --amount 1234 --card 6222020000000007 --pin 123456 | tee "$work/p1.txt" | indent
grep -q APPROVED "$work/p1.txt" || fail "the purchase was not approved"
step "李四's card has only 50.00 CNY on it; a 90.00 CNY purchase:"
pos purchase --amount 9000 --card 6222020000000015 --pin 111111 | indent || true
step "张三 mistypes the PIN:"
pos purchase --amount 500 --card 6222020000000007 --pin 000000 | indent || true

say "6. Mobile-number payment (seed 002): a payee registers with a one-time code"
"$possum" phonepay bin add 622202 "ICBC demo" --config "$cfg" 2>/dev/null | indent
"$possum" phonepay bin add 621700 "CCB demo" --config "$cfg" 2>/dev/null | indent
step "王五 registers mobile 13800138000 and the card 6217 0000 0000 0006 to be paid on:"
curl -sS -X POST "http://127.0.0.1:$api/v1/payees" -H 'Content-Type: application/json' \
  -d '{"name":"王五","mobile":"13800138000","card":"6217000000000006"}' | indent; echo
step "The platform texts 王五's phone a code (as the fake SMSC received it):"
otp_sms=$(wait_sms 13800138000 "[0-9]\{6\}")
step "  SMS to 13800138000: $otp_sms"
otp=$(printf '%s' "$otp_sms" | grep -o '[0-9]\{6\}' | head -1)
step "王五 confirms the code:"
curl -sS -X POST "http://127.0.0.1:$api/v1/payees/13800138000/confirm" \
  -H 'Content-Type: application/json' -d "{\"code\":\"$otp\"}" | sed 's/"token":"[^"]*"/"token":"…"/' | indent; echo

say "7. 张三 pays 王五 50.00 CNY by mobile number at the terminal"
step "A typo in the payee's number is refused on the terminal, before anything is sent:"
pos phonepay --payee 12345678901 --payer 13912345678 --amount 5000 --card 6222020000000007 \
  --pin 123456 --yes | indent || true
step "Payee 13800138000, payer 13912345678, 50.00 CNY; the platform shows the name masked:"
pos phonepay --payee 13800138000 --payer 13912345678 --amount 5000 --card 6222020000000007 \
  --pin 123456 --yes | tee "$work/pp.txt" | indent
grep -q APPROVED "$work/pp.txt" || fail "the mobile-number payment was not approved"
step "The payer is told of the debit by SMS:"
step "  SMS to 13912345678: $(wait_sms 13912345678 '50.00')"
step "A card whose bank is not a contracted bank of the provider is refused, with the reason:"
pos phonepay --payee 13800138000 --payer 13912345678 --amount 1000 --card 9558800000000000 \
  --pin 123456 --yes | indent || true

say "8. End of day: the provider's clearing file, reconciliation, the payee credited"
"$possum" issuer clearing --config "$cfg" --date "$today" --out "$work/var/clearing" 2>/dev/null | indent
step "The provider's clearing file for $today:"
indent < "$work/var/clearing/clearing-${today//-/}.csv"
"$possum" recon run --config "$cfg" --date "$today" 2>/dev/null | indent
step "王五 is told of the credit, with the payer's number:"
step "  SMS to 13800138000: $(wait_sms 13800138000 '13912345678')"
step "Running reconciliation again changes nothing:"
"$possum" recon run --config "$cfg" --date "$today" 2>/dev/null | indent

say "9. The terminal settles its batch; the ledger balances"
pos settle | indent
"$possum" ledger check --config "$cfg" 2>/dev/null | indent

say "10. What the operator sees in the metrics"
curl -fsS "http://127.0.0.1:$http/metrics" | grep -E '^possum_(switch|net_frames)' | grep -v ' 0$' | head -12 | indent

say "11. Stopping the platform (SIGTERM: drain, then exit)"
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
pid=""
grep -E 'draining|drained|stopped' "$work/possumd.log" | sed 's/.*\] /     | /'
step "possumd exited with status $rc."
[ "$rc" -eq 0 ] || fail "possumd exited with $rc"
step "A scan of everything the platform wrote for the test card numbers and keys in the clear:"
if grep -rIlaE '6222020000000007|6217000000000006|0123456789ABCDEFFEDCBA9876543210' \
     "$work/var" "$work/possumd.log" --exclude-dir=pos 2>/dev/null; then fail "a clear card number or key was found"; fi
step "  nothing found (databases, logs, audit trail, clearing files show masked numbers only)."

# The other systems, each in its own scratch directory with its own nodes.
for part in keyload tms; do
  if [ -x "$top/scripts/demo-$part.sh" ] || [ -f "$top/scripts/demo-$part.sh" ]; then
    bash "$top/scripts/demo-$part.sh" "$build" || fail "the $part demo failed"
  fi
done
say "Demo finished: every step above ran against real daemons over real sockets."
