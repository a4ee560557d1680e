#!/usr/bin/env bash
# Remote key loading (seed 001), from the factory to the terminal's first purchase:
#   a CA; a customer's KMS (its own possumd, HSM and database); the MTMS; a POS terminal whose
#   PIN pad makes a TK; the operator confirms the customer (once with a correction); the MTMS
#   forwards the TK to the KMS; the terminal loads its TMK remotely; the TMK goes to the switch
#   under a zone key; the terminal signs on and buys. Then its PIN pad is swapped: the new one
#   loads its own TMK remotely and the switch is re-keyed (possum terminal set-tmk).
# Usage: scripts/demo-keyload.sh [BUILD_DIR]   (called by `make demo` through scripts/demo.sh)
# Everything runs in var/demo-keyload (or $POSSUM_DEMO_DIR) on free ports and is stopped at
# the end; exit 0 only if every step did what it says.
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
possum="$top/$build/src/app/possum"
possumd="$top/$build/src/app/possumd"
work=${POSSUM_DEMO_DIR:-$top/var/demo-keyload}
rm -rf "$work"; mkdir -p "$work"/{ca,kms,mtms,switch,pos,op}
export POSSUM_LMK_PASSPHRASE="demo passphrase, not for production"
unset POSSUM_CA_PASSPHRASE

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step() { printf '   %s\n' "$*"; }
show() { sed 's/^/     | /'; }
pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# A port nobody answers on (a connect that is refused), for listeners that must know each
# other's address before they start; below Linux's ephemeral range (32768-60999), where
# port-0 listeners and outgoing connections take theirs.
free_port() {
  local p
  for p in $(shuf -i 20000-32000 -n 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  echo "no free port" >&2; return 1
}
# start NAME INI WANT...: possumd with INI, until its ports file names every WANT.
# Returns 2 when a fixed port it was given was taken meanwhile (the caller picks another).
start() {
  local name=$1 ini=$2 pid; shift 2
  rm -f "$work/$name.ports"
  "$possumd" -c "$ini" --ports-file "$work/$name.ports" 2> "$work/$name.log" &
  pid=$!; pids+=("$pid"); eval "${name}_pid=$pid"
  for _ in $(seq 1 600); do
    local ok=1; for w in "$@"; do grep -q "^$w=" "$work/$name.ports" 2>/dev/null || ok=0; done
    [ $ok = 1 ] && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      grep -q 'Address already in use' "$work/$name.log" && return 2
      break
    fi
    sleep 0.1
  done
  cat "$work/$name.log"; echo "$name did not start"; exit 1
}
port_of() { sed -n "s/^$2=.*://p" "$work/$1.ports" | tail -1; }
stop() { local p; p=$(eval echo "\$${1}_pid"); kill -TERM "$p"; wait "$p" || true; }

say "1. The certificate authority (seed 001 [0031]: it identifies operator terminals, the MTMS and the KMS)"
"$possum" ca init --dir "$work/ca" --name "possum demo CA" 2>/dev/null | show
"$possum" ca issue --dir "$work/ca" --role mtms --name factory --san 127.0.0.1 --out "$work/mtms/tls" >/dev/null
"$possum" ca issue --dir "$work/ca" --role kms --name C001 --san 127.0.0.1 --out "$work/kms/tls" >/dev/null
"$possum" ca issue --dir "$work/ca" --role operator --name alice --out "$work/op/alice" >/dev/null
step "certificates: mtms:factory, kms:C001 (TLS), operator:alice"

say "2. The customer's KMS: its own HSM, its receiving key certified by the CA"
cat > "$work/kms/kms.ini" <<EOF
[possumd]
node = kms-C001
log_level = info
[store]
backend = sqlite
path = $work/kms/kms.db
[http]
listen = 127.0.0.1:0
[kms]
enabled = true
customer = C001
hsm_lmk_file = $work/kms/lmk.bin
hsm_audit_file = $work/kms/hsm-audit.log
hsm_lmk_scrypt_log2n = 12
listen = 127.0.0.1:0
tls_cert = tls.crt
tls_key = tls.key
tls_ca = $work/ca/ca.crt
tls_crl = $work/ca/crl.pem
tls_require_client_cert = true
mtms_cn = mtms:factory
recv_cert = recv.crt
zone_key = ZMK.platform
download_listen = 127.0.0.1:0
download_tls_cert = tls.crt
download_tls_key = tls.key
EOF
"$possum" hsm init -c "$work/kms/kms.ini" --lmk-file "$work/kms/lmk.bin" --audit-file "$work/kms/hsm-audit.log" 2>/dev/null | show
"$possum" kms init -c "$work/kms/kms.ini" --out "$work/kms/recv.pub" 2>/dev/null | head -1 | show
"$possum" ca issue --dir "$work/ca" --role kms --name C001 --pubkey "$work/kms/recv.pub" --out "$work/kms/recv" | head -1 | show
# A second customer whose KMS is elsewhere: only its receiving certificate is needed here.
"$possum" ca issue --dir "$work/ca" --role kms --name C002 --purpose key-agreement --out "$work/ca/c002-recv" >/dev/null
start kms "$work/kms/kms.ini" kms kms.download
kms_port=$(port_of kms kms); dl_port=$(port_of kms kms.download)
step "KMS of customer C001 running: intake https://127.0.0.1:$kms_port (MTMS only), downloads https://127.0.0.1:$dl_port"

say "3. The MTMS: customers, and the production order's serial numbers"
cat > "$work/mtms/mtms.ini" <<EOF
[possumd]
node = mtms
log_level = info
[store]
backend = sqlite
path = $work/mtms/mtms.db
[http]
listen = 127.0.0.1:0
[mtms]
enabled = true
listen = 127.0.0.1:0
tls_cert = tls.crt
tls_key = tls.key
tls_ca = $work/ca/ca.crt
tls_crl = $work/ca/crl.pem
tls_require_client_cert = true
outbox_interval_ms = 200
EOF
start mtms "$work/mtms/mtms.ini" mtms
mtms_url="https://127.0.0.1:$(port_of mtms mtms)"
"$possum" mtms customer add -c "$work/mtms/mtms.ini" --code C001 --name "Bank of Possum" \
  --kms-url "https://127.0.0.1:$kms_port" --kms-cert "$work/kms/recv.crt" | show
"$possum" mtms customer add -c "$work/mtms/mtms.ini" --code C002 --name "Acquirer Two" \
  --kms-url "https://127.0.0.1:9" --kms-cert "$work/ca/c002-recv.crt" | show
printf 'serial,customer\nPP10000001,C002\nPP10000002,C001\n' > "$work/order.csv"
step "production order PO-2026-001 (PP10000001 booked for C002 by mistake):"
"$possum" mtms import -c "$work/mtms/mtms.ini" --order PO-2026-001 "$work/order.csv" | show

say "4. At the factory: the POS terminal and its PIN pad (device key and certificate)"
term="$work/pos/10000001"
"$possum" pos init --data "$term" --tid 10000001 | show
"$possum" operator personalise --pinpad "$term" --ca-dir "$work/ca" | show

say "5. The operator terminal (claims 1-2): the MTMS says C002; the operator corrects it to C001"
op=(--mtms "$mtms_url" --tls-ca "$work/ca/ca.crt" --tls-cert "$work/op/alice.crt" --tls-key "$work/op/alice.key")
"$possum" operator run "${op[@]}" --pinpad "$term" --confirm no --customer C001 --confirm-again yes | show
step "the PIN pad made a fresh TK and exported it wrapped to C001's KMS key: the operator"
step "terminal and the MTMS only relayed ciphertext (docs/trust-model.md)"

say "6. The MTMS forwards the TK to C001's KMS (outbox, mutual TLS)"
for _ in $(seq 1 100); do
  "$possum" mtms status -c "$work/mtms/mtms.ini" PP10000001 | grep -q ' acknowledged ' && break; sleep 0.1
done
"$possum" mtms status -c "$work/mtms/mtms.ini" PP10000001 | show
"$possum" mtms status -c "$work/mtms/mtms.ini" PP10000001 | grep -q ' acknowledged '
step "who confirmed what (the MTMS's audit trail):"
"$possum" mtms audit -c "$work/mtms/mtms.ini" --serial PP10000001 | cut -c1-150 | show

say "7. The terminal loads its TMK remotely (proof of TK, TMK under TK, check value)"
"$possum" pos keyload --data "$term" --kms "https://127.0.0.1:$dl_port" --tls-ca "$work/ca/ca.crt" | show
"$possum" kms status -c "$work/kms/kms.ini" PP10000001 | show

say "8. The TMK goes to the transaction platform under a zone key"
zc1=0123456789ABCDEFFEDCBA9876543210; zc2=1F1F1F1F1F1F1F1F0E0E0E0E0E0E0E0E
kcv1=$("$possum" keytool kcv --key $zc1); kcv2=$("$possum" keytool kcv --key $zc2)
sw_lmk="$work/switch/lmk.bin"; sw_audit="$work/switch/hsm-audit.log"
issuer_port=$(free_port)
cat > "$work/switch/switch.ini" <<EOF
[possumd]
node = platform
log_level = info
[store]
backend = sqlite
path = $work/switch/switch.db
[http]
listen = 127.0.0.1:0
[switch]
enabled = true
listen = 127.0.0.1:0
hsm_lmk_file = $sw_lmk
hsm_audit_file = $sw_audit
provider_connect = 127.0.0.1:$issuer_port
[issuer]
enabled = true
listen = 127.0.0.1:$issuer_port
seed_demo = true
hsm_lmk_file = $sw_lmk
hsm_audit_file = $sw_audit
EOF
hsm_sw=(--config "$work/switch/switch.ini" --lmk-file "$sw_lmk" --audit-file "$sw_audit")
"$possum" hsm init "${hsm_sw[@]}" >/dev/null 2>&1
"$possum" hsm form "${hsm_sw[@]}" --label demo.zpk --usage P0 --exportable E \
  --components F891803DA162AB9D080EA162CD042A6E:D90CF3,7FB67F3BA15D4C678643F1B0B5CE8579:187918,E9495723DCE364C185F15E9BB0F76E98:E5F0FA >/dev/null 2>&1
"$possum" hsm form -c "$work/kms/kms.ini" --lmk-file "$work/kms/lmk.bin" --audit-file "$work/kms/hsm-audit.log" \
  --label ZMK.platform --usage K0 --mode E --exportable N --components "$zc1:$kcv1,$zc2:$kcv2" 2>/dev/null \
  | grep -v '^block' | show
"$possum" hsm form "${hsm_sw[@]}" --label ZMK.kms --usage K0 --mode D --exportable N \
  --components "$zc1:$kcv1,$zc2:$kcv2" >/dev/null 2>&1
export_out=$("$possum" kms tmk-export -c "$work/kms/kms.ini" --serial PP10000001)
echo "$export_out" | show
crypt=$(echo "$export_out" | sed -n 's/^cryptogram: //p'); kcv=$(echo "$export_out" | sed -n 's/^kcv: //p')
block=$("$possum" hsm import "${hsm_sw[@]}" 2>/dev/null --label TMK.10000001 --kek ZMK.kms --key "$crypt" --kcv "$kcv" \
  --usage K0 --alg T --mode E --exportable N | sed -n 's/^block: //p')
"$possum" terminal add --config "$work/switch/switch.ini" --tid 10000001 --mid 898100000000001 \
  --name "Possum Coffee" --tmk-block "$block" | show

say "9. The terminal signs on with the switch and makes its first purchase"
# the switch must know the issuer's port before both start: another one if it was taken
for try in 1 2 3 4 5; do
  rc=0; start platform "$work/switch/switch.ini" switch || rc=$?
  [ $rc = 0 ] && break
  [ $try = 5 ] && { cat "$work/platform.log"; echo "platform did not start"; exit 1; }
  issuer_port=$(free_port)
  sed -i "s/^provider_connect = 127.0.0.1:.*/provider_connect = 127.0.0.1:$issuer_port/; s/^listen = 127.0.0.1:[1-9][0-9]*$/listen = 127.0.0.1:$issuer_port/" "$work/switch/switch.ini"
done
sw_port=$(port_of platform switch)
"$possum" pos signon --data "$term" --port "$sw_port" | show
"$possum" pos purchase --data "$term" --port "$sw_port" --amount 1234 --card 6222020000000007 --pin 123456 | tee "$work/purchase.out" | show
grep -q APPROVED "$work/purchase.out"

say "10. The PIN pad is swapped: the new one loads its own TMK; the switch is re-keyed"
"$possum" pos settle --data "$term" --port "$sw_port" | show   # the old PIN pad's batch first
term2="$work/pos/10000001-PP10000002"
"$possum" pos init --data "$term2" --tid 10000001 --serial PP10000002 | show
"$possum" operator personalise --pinpad "$term2" --ca-dir "$work/ca" | show
"$possum" operator run "${op[@]}" --pinpad "$term2" --confirm yes | show
for _ in $(seq 1 100); do
  "$possum" mtms status -c "$work/mtms/mtms.ini" PP10000002 | grep -q ' acknowledged ' && break; sleep 0.1
done
"$possum" pos keyload --data "$term2" --kms "https://127.0.0.1:$dl_port" --tls-ca "$work/ca/ca.crt" | show
export_out=$("$possum" kms tmk-export -c "$work/kms/kms.ini" --serial PP10000002)
crypt=$(echo "$export_out" | sed -n 's/^cryptogram: //p'); kcv=$(echo "$export_out" | sed -n 's/^kcv: //p')
block=$("$possum" hsm import "${hsm_sw[@]}" 2>/dev/null --label TMK.10000001.PP10000002 --kek ZMK.kms --key "$crypt" \
  --kcv "$kcv" --usage K0 --alg T --mode E --exportable N | sed -n 's/^block: //p')
"$possum" terminal set-tmk --config "$work/switch/switch.ini" --tid 10000001 --tmk-block "$block" 2>/dev/null | show
step "the old PIN pad cannot use a sign-on any more (its TMK is not the terminal's):"
if "$possum" pos signon --data "$term" --port "$sw_port" > "$work/old-signon.out" 2>&1; then
  cat "$work/old-signon.out"; echo "the old PIN pad signed on"; exit 1
fi
show < "$work/old-signon.out"
"$possum" pos signon --data "$term2" --port "$sw_port" | show
"$possum" pos purchase --data "$term2" --port "$sw_port" --amount 2345 --card 6222020000000007 --pin 123456 | tee "$work/purchase2.out" | show
grep -q APPROVED "$work/purchase2.out"

say "11. Stopping the platform, the MTMS and the KMS"
stop platform; stop mtms; stop kms
step "what each stored is key blocks, check values and envelopes only; tests/e2e/keyload scans every"
step "file they wrote (databases, WAL, HSM audit logs, daemon logs) for the clear TK and TMK"
pids=()
say "Remote key loading demo finished: factory to first purchase, and a PIN pad swap, over real sockets."
