#!/usr/bin/env bash
# e2e_tms_input: what the TMS does with bad input from a terminal or an operator: malformed
# JSON, bodies over the limit, unknown serials, impossible ranges, a report for an update
# never offered, fields of the wrong kind. Each gets a 4xx with the JSON error shape, and the
# store is exactly as it was.
source "$(dirname "$0")/lib.sh"
probe="$build/tests/e2e/tms/tms_probe"

tms_init
start_daemon
new_terminal 10000001 A920
publish pos-app 1.0.0 "$(app_file 1.0.0)"
campaign c1 pos-app@1.0.0 PP10000001
tms="http://127.0.0.1:$tms_port"
ops="http://127.0.0.1:$http_port"
nonce=00112233445566778899aabbccddeeff
# the offer, seen by a check-in, so that a download would be allowed
curl -sf -X POST "$tms/v1/checkin" -d "{\"serial\":\"PP10000001\",\"model\":\"A920\",\"nonce\":\"$nonce\"}" > /dev/null
out=$("$possum" tms terminal provision PP10000001 --config "$cli" --kek tms.kek)
token=$("$probe" 127.0.0.1 "$tms_port" PP10000001 "$(sed -n 's/^dmk-block: //p' <<< "$out")" \
  "$KEK1,$KEK2" token | sed -n 's/^token //p')
[ -n "$token" ] || fail "no session token"
sleep 0.5 # the check-in's registry write

snapshot() {
  sqlite3 "$work/possum.db" "SELECT * FROM tms_terminal; SELECT * FROM tms_terminal_group;
    SELECT * FROM tms_package; SELECT * FROM tms_campaign; SELECT * FROM tms_target;
    SELECT id, serial, state, token_hash, expires_ms FROM tms_session; SELECT * FROM tms_report;
    SELECT role, version FROM tms_meta;" | sha256sum
}
before=$(snapshot)

# req NAME STATUS CODE METHOD URL [BODY [HEADER]]
req() {
  local name=$1 want=$2 code=$3 method=$4 url=$5 body=${6-} hdr=${7-} out
  if [ -n "$hdr" ]; then out=$(curl -s -w '\n%{http_code}' -X "$method" -H "$hdr" ${body:+--data-binary "$body"} "$url")
  else out=$(curl -s -w '\n%{http_code}' -X "$method" ${body:+--data-binary "$body"} "$url"); fi
  [ "$(tail -1 <<< "$out")" = "$want" ] || { echo "$out"; fail "$name: expected HTTP $want"; }
  expect "$(head -n -1 <<< "$out")" "{\"error\":{\"status\":$want,\"code\":\"$code\"" "$name: error shape"
}
bearer="Authorization: Bearer $token"

step "malformed JSON"
req "checkin: not JSON" 400 bad_json POST "$tms/v1/checkin" '{"serial":'
req "checkin: an array" 400 bad_json POST "$tms/v1/checkin" '[1,2]'
req "checkin: duplicate key" 400 bad_json POST "$tms/v1/checkin" '{"serial":"a","serial":"b"}'
req "sessions: not JSON" 400 bad_json POST "$tms/v1/sessions" 'x'
req "report: not JSON" 400 bad_json POST "$tms/v1/reports" '{' "$bearer"
req "operator: not JSON" 400 bad_json POST "$ops/v1/tms/terminals" '{"serial"'

step "fields of the wrong kind"
req "checkin: serial a number" 400 bad_request POST "$tms/v1/checkin" "{\"serial\":5,\"model\":\"A920\",\"nonce\":\"$nonce\"}"
req "checkin: unknown field" 400 bad_request POST "$tms/v1/checkin" "{\"serial\":\"PP10000001\",\"model\":\"A920\",\"nonce\":\"$nonce\",\"x\":1}"
req "checkin: short nonce" 400 bad_request POST "$tms/v1/checkin" '{"serial":"PP10000001","model":"A920","nonce":"00"}'
req "checkin: bad version" 400 bad_request POST "$tms/v1/checkin" "{\"serial\":\"PP10000001\",\"model\":\"A920\",\"nonce\":\"$nonce\",\"installed\":{\"pos-app\":\"1.x\"}}"
req "checkin: wrong model" 409 conflict POST "$tms/v1/checkin" "{\"serial\":\"PP10000001\",\"model\":\"S90\",\"nonce\":\"$nonce\"}"
req "sessions: short T-DATA" 400 bad_request POST "$tms/v1/sessions" '{"serial":"PP10000001","t_data":"0011"}'
req "sessions: bad session id" 400 bad_request POST "$tms/v1/sessions/xyz" '{"serial":"PP10000001","sac":"00","tac_ok":true}'
req "sessions: tac_ok a string" 400 bad_request POST "$tms/v1/sessions/00112233445566778899aabbccddeeff" '{"serial":"PP10000001","sac":"00","tac_ok":"yes"}'
req "report: unknown status" 400 bad_request POST "$tms/v1/reports" '{"campaign":"c1","status":"great","version":"1.0.0"}' "$bearer"
req "report: failed without a reason" 400 bad_request POST "$tms/v1/reports" '{"campaign":"c1","status":"failed","version":"1.0.0"}' "$bearer"
req "operator: bad serial" 400 bad_request POST "$ops/v1/tms/terminals" '{"serial":"a b","model":"A920"}'
req "operator: bad schedule" 400 bad_request POST "$ops/v1/tms/terminals" '{"serial":"NEW1","model":"A920","schedule":"often"}'

step "bodies over the limit"
big=$(head -c 70000 /dev/zero | tr '\0' 'a')
req "checkin: 70 kB" 413 body_too_large POST "$tms/v1/checkin" "{\"serial\":\"$big\"}"

step "unknown serials"
req "checkin" 404 not_found POST "$tms/v1/checkin" "{\"serial\":\"NOSUCH\",\"model\":\"A920\",\"nonce\":\"$nonce\"}"
req "sessions" 404 not_found POST "$tms/v1/sessions" '{"serial":"NOSUCH","t_data":"00112233445566778899AABBCCDDEEFF"}'
req "operator" 404 not_found GET "$ops/v1/tms/terminals/NOSUCH"
req "campaign" 404 not_found GET "$ops/v1/tms/campaigns/nosuch"

step "impossible ranges"
out=$(curl -s -w '\n%{http_code}' -H "$bearer" -H "Range: bytes=999999-" "$tms/v1/packages/pos-app/1.0.0")
[ "$(tail -1 <<< "$out")" = 416 ] || fail "range past the end: expected 416"
expect "$out" "\"code\":\"range_not_satisfiable\"" "416 error shape"
out=$(curl -s -D - -o /dev/null -H "$bearer" -H "Range: bytes=0-9" "$tms/v1/packages/pos-app/1.0.0")
expect "$out" "206" "a possible range"
expect "$out" "Content-Range: bytes 0-9/" "its Content-Range"
req "a release not offered" 403 forbidden GET "$tms/v1/packages/pos-app/9.9.9" "" "$bearer"

step "a report for an update never offered"
req "unknown campaign" 404 not_found POST "$tms/v1/reports" '{"campaign":"nosuch","status":"installed","version":"1.0.0"}' "$bearer"
req "another version" 409 conflict POST "$tms/v1/reports" '{"campaign":"c1","status":"installed","version":"2.0.0"}' "$bearer"

step "nothing changed in the store"
[ "$(snapshot)" = "$before" ] || fail "the store changed"
stop_daemon
echo "e2e_tms_input: OK"
