#!/usr/bin/env bash
# e2e_tms_security: every attack the update protocol is built to stop (docs/update-protocol.md,
# "Threat model"), against the real daemon. The TMS's store and files stand in for a
# compromised server or mirror: the attacker controls them, not the offline keys nor the DMKs.
# Each attempt is refused with a clear reason, and the terminal keeps running its version.
source "$(dirname "$0")/lib.sh"
probe="$build/tests/e2e/tms/tms_probe"

tms_init
start_daemon
new_terminal 10000001 A920
new_terminal 10000002 A920
run1() { "${posupd[@]}" run --data "$work/pos-10000001" 2>&1 || true; }
still_1_0_0() {
  [ "$(running_version 10000001)" = 1.0.0 ] || fail "$1: the terminal no longer runs 1.0.0"
  wait_sql "SELECT installed FROM tms_terminal WHERE serial = 'PP10000001'" '{"pos-app":"1.0.0"}' ||
    fail "$1: the registry says the terminal changed version"
}

step "baseline: both terminals run 1.0.0"
publish pos-app 1.0.0 "$(app_file 1.0.0)"
campaign base pos-app@1.0.0 PP10000001,PP10000002
out=$(run1); expect "$out" "pos-app 1.0.0: installed" "baseline install"
out=$("${posupd[@]}" run --data "$work/pos-10000002"); expect "$out" "pos-app 1.0.0: installed" "baseline 2"

step "a package whose bytes were changed on the server"
f=$(app_file 2.0.0); publish pos-app 2.0.0 "$f"
sha=$(sha256sum "$f" | cut -c1-64)
mkdir -p "$work/cache"; sed 's/demo POS application/evil POS application/' "$f" > "$work/cache/$sha"
[ "$(stat -c %s "$work/cache/$sha")" = "$(stat -c %s "$f")" ] || fail "tampered file length"
campaign bytes pos-app@2.0.0 PP10000001
out=$(run1)
expect "$out" "pos-app 2.0.0: failed: the downloaded pos-app 2.0.0 does not match its signed record" "changed bytes"
still_1_0_0 "changed bytes"
[ ! -e "$work/pos-10000001/tms/download/$sha.part" ] || fail "a bad download was kept"
[ "$(count bytes failed)" = 1 ] || fail "changed bytes: counted failed"

step "metadata signed by too few keys"
f=$(app_file 2.1.0); publish pos-app 2.1.0 "$f"
"$possum" tms targets make --name pos-app --version 2.1.0 --kind app --models A920 --file "$f" \
  --out "$work/weak.json" > /dev/null
"$possum" tms sign --key "$work/targets1.key" "$work/weak.json" > /dev/null
sql "UPDATE tms_package SET meta = CAST(readfile('$work/weak.json') AS TEXT), meta_sha256 = '$(sha256sum "$work/weak.json" | cut -c1-64)' WHERE version = '2.1.0'"
campaign weak pos-app@2.1.0 PP10000001
sleep 0.3 # the TMS re-signs its timestamp over the record it now holds
out=$(run1)
expect "$out" "pos-app 2.1.0: failed: targets pos-app 2.1.0: 1 valid targets signature, threshold 2" "too few signatures"
still_1_0_0 "too few signatures"

step "an older version offered as an update"
publish pos-app 0.9.0 "$(app_file 0.9.0)"
sql "UPDATE tms_package SET version_num = 999999000000000000 WHERE version = '0.9.0'"
campaign older pos-app@0.9.0 PP10000001
out=$(run1)
expect "$out" "pos-app 0.9.0: failed: pos-app 0.9.0 is not newer than the installed 1.0.0 (rollback refused)" "older version"
still_1_0_0 "older version"

step "an expired timestamp (a frozen TMS)"
# the TMS's tick is slowed to a minute, so it does not sign a fresh record over the stale one
stop_daemon
f=$(app_file 2.2.0); publish pos-app 2.2.0 "$f"
"$possum" tms campaign create frozen --config "$cli" --package pos-app@2.2.0 --serials PP10000001 > /dev/null
"$possum" tms campaign start frozen --config "$cli" > /dev/null
sql "UPDATE tms_target SET state = 'pending' WHERE campaign = 'frozen'"
sql "UPDATE tms_campaign SET current_wave = 1, wave_opened_ms = 1 WHERE name = 'frozen'"
start_daemon "" 60000
latest=$(sql "SELECT MAX(version) FROM tms_meta WHERE role = 'timestamp'")
sql "SELECT body FROM tms_meta WHERE role = 'timestamp' AND version = $latest" |
  sed -E "s/\"expires_ms\":[0-9]+/\"expires_ms\":1000/; s/\"version\":$latest/\"version\":$((latest + 1))/; s/\"signatures\":\[[^]]*\]/\"signatures\":[]/" > "$work/ts.json"
"$possum" tms sign --key "$work/timestamp.key" "$work/ts.json" > /dev/null
sql "INSERT INTO tms_meta (role, version, body, expires_ms, created_ms) VALUES ('timestamp', $((latest + 1)), CAST(readfile('$work/ts.json') AS TEXT), 1000, 0)"
out=$(run1)
expect "$out" "expired at 1970-01-01T00:00:01.000Z (a frozen or stale TMS)" "expired timestamp"
still_1_0_0 "expired timestamp"
stop_daemon
start_daemon

step "a wrong DMK on the terminal's side"
out=$("$possum" tms terminal provision PP10000001 --config "$cli" --kek tms.kek)
other_block=$(sed -n 's/^dmk-block: //p' <<< "$out")
cp "$work/pos-10000002/tms/dmk.sealed" "$work/dmk2.sealed"
"${posupd[@]}" provision --data "$work/pos-10000002" --tms "127.0.0.1:$tms_port" --model A920 \
  --dmk-block "$other_block" --kbpk-components "$KEK1:$(kcv $KEK1),$KEK2:$(kcv $KEK2)" \
  --root "$work/root.json" > /dev/null
f=$(app_file 2.3.0); publish pos-app 2.3.0 "$f"
campaign wrongdmk pos-app@2.3.0 PP10000002
out=$("${posupd[@]}" run --data "$work/pos-10000002" 2>&1 || true)
expect "$out" "the TMS's TAC does not match" "wrong DMK (terminal)"
[ "$(running_version 10000002)" = 1.0.0 ] || fail "wrong DMK: terminal 2 changed version"
grep -q "terminal PP10000002 did not accept the TMS's TAC" "$work/possumd.log" || fail "TMS log: TAC refused"

step "a wrong DMK on the TMS's side"
cp "$work/dmk2.sealed" "$work/pos-10000002/tms/dmk.sealed"   # the terminal's own DMK again
sql "UPDATE tms_terminal SET dmk_block = (SELECT dmk_block FROM tms_terminal WHERE serial = 'PP10000001') WHERE serial = 'PP10000002'"
open_before=$(sql "SELECT COUNT(*) FROM tms_session WHERE serial = 'PP10000002' AND state = 'open'")
out=$("${posupd[@]}" run --data "$work/pos-10000002" 2>&1 || true)
expect "$out" "the TMS's TAC does not match" "wrong DMK (TMS)"
[ "$(running_version 10000002)" = 1.0.0 ] || fail "wrong DMK (TMS): terminal 2 changed version"
[ "$(sql "SELECT COUNT(*) FROM tms_session WHERE serial = 'PP10000002' AND state = 'open'")" = "$open_before" ] ||
  fail "wrong DMK (TMS): a session opened"

step "a replayed SAC, and a wrong SAC claiming the TAC matched"
out=$("$possum" tms terminal provision PP10000001 --config "$cli" --kek tms.kek)
block=$(sed -n 's/^dmk-block: //p' <<< "$out")
out=$("$probe" 127.0.0.1 "$tms_port" PP10000001 "$block" "$KEK1,$KEK2" replay)
expect "$(sed -n 2p <<< "$out")" "200 ok" "the first answer opens the session"
expect "$(sed -n 3p <<< "$out")" "401" "the replay is refused"
expect "$(sed -n 3p <<< "$out")" "was answered already (a replayed SAC?)" "replay reason"
out=$("$probe" 127.0.0.1 "$tms_port" PP10000001 "$block" "$KEK1,$KEK2" bad-sac)
expect "$(sed -n 2p <<< "$out")" "401" "wrong SAC refused"
expect "$(sed -n 2p <<< "$out")" "SAC does not match: the terminal does not hold the DMK of PP10000001" "wrong SAC reason"

step "a download without a session"
out=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$tms_port/v1/packages/pos-app/1.0.0")
expect "$out" '"code":"unauthorized"' "no session"
expect "$out" "no session: authenticate first" "no session reason"
expect "$out" " 401" "no session status"
out=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $(printf '%064d' 7)" "http://127.0.0.1:$tms_port/v1/packages/pos-app/1.0.0")
expect "$out" " 401" "made-up token"
out=$(curl -s -w ' %{http_code}' -X POST -d '{"campaign":"base","status":"installed","version":"1.0.0"}' "http://127.0.0.1:$tms_port/v1/reports")
expect "$out" " 401" "report without a session"

step "the terminals still run what they ran"
still_1_0_0 "at the end"
[ "$(running_version 10000002)" = 1.0.0 ] || fail "terminal 2 at the end"
metric=$(curl -s "http://127.0.0.1:$http_port/metrics" | grep '^possum_tms_security_events_total' | awk '{print $2}')
[ "${metric:-0}" -ge 4 ] || fail "security events counted: ${metric:-0}"
stop_daemon
echo "e2e_tms_security: OK"
