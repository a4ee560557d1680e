#!/usr/bin/env bash
# A throwaway Kannel SMS gateway for tests and the demo (docs/phonepay.md, "Kannel"):
# bearerbox with a fake SMSC, kannel-extras' fakesmsc standing in for the operator's SMSC
# (it prints every message it receives), and smsbox with the HTTP sendsms interface.
#
#   scripts/kannel-test.sh start DIR ADMIN_PORT SMSBOX_PORT SMSC_PORT SENDSMS_PORT
#       writes DIR/kannel.conf, starts the three programs (pid files in DIR), waits until
#       the SMSC link is online and sendsms answers, then prints and writes DIR/kannel.env:
#         KANNEL_SENDSMS_URL=http://127.0.0.1:PORT/cgi-bin/sendsms
#         KANNEL_USER=possum  KANNEL_PASSWORD=<random>  KANNEL_FROM=10690001
#         KANNEL_FAKESMSC_LOG=DIR/fakesmsc.log   ("Got message N: <from to ucs-2 %XX..>")
#   scripts/kannel-test.sh stop DIR
#       stops what start started (by the pid files in DIR only) and leaves DIR.
# Exit status: 0 ok, 1 a program is missing or did not come up (the reason is printed).
set -euo pipefail

die() { echo "kannel-test: $*" >&2; exit 1; }

find_prog() { # name, fallbacks...
    local p
    p=$(command -v "$1" 2>/dev/null || true)
    [ -n "$p" ] && { echo "$p"; return; }
    shift
    for c in "$@"; do [ -x "$c" ] && { echo "$c"; return; }; done
    return 1
}

fakesmsc_path() {
    [ -n "${KANNEL_FAKESMSC:-}" ] && [ -x "$KANNEL_FAKESMSC" ] && { echo "$KANNEL_FAKESMSC"; return; }
    local p
    p=$(dpkg -L kannel-extras 2>/dev/null | grep '/fakesmsc$' | head -n1 || true)
    [ -n "$p" ] && [ -x "$p" ] && { echo "$p"; return; }
    [ -x /usr/lib/kannel/test/fakesmsc ] && { echo /usr/lib/kannel/test/fakesmsc; return; }
    return 1
}

# wait_for SECONDS CMD...: run CMD until it succeeds.
wait_for() {
    local end=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.2
    done
}

smsc_online() { curl -sf "http://127.0.0.1:$1/status.txt?password=$2" | grep -q 'online'; }
sendsms_answers() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/cgi-bin/sendsms" | grep -q '^[0-9]'; }

start() {
    local dir=$1 admin=$2 boxp=$3 smscp=$4 sendp=$5
    local bb sb fk pw adminpw
    bb=$(find_prog bearerbox /usr/sbin/bearerbox) || die "bearerbox not found (Debian package kannel)"
    sb=$(find_prog smsbox /usr/sbin/smsbox) || die "smsbox not found (Debian package kannel)"
    fk=$(fakesmsc_path) || die "fakesmsc not found (Debian package kannel-extras; or set KANNEL_FAKESMSC)"
    command -v curl >/dev/null || die "curl not found"
    mkdir -p "$dir"
    pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    adminpw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    cat > "$dir/kannel.conf" <<EOF
group = core
admin-port = $admin
admin-password = $adminpw
admin-allow-ip = 127.0.0.1
smsbox-port = $boxp
box-allow-ip = 127.0.0.1
log-file = "$dir/bearerbox.log"
log-level = 0

group = smsc
smsc = fake
smsc-id = fake
port = $smscp
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
sendsms-port = $sendp
log-file = "$dir/smsbox.log"
log-level = 0

group = sendsms-user
username = possum
password = $pw
user-allow-ip = 127.0.0.1
default-sender = 10690001
concatenation = true
max-messages = 10

group = sms-service
keyword = default
catch-all = true
omit-empty = true
text = ""
EOF
    chmod 600 "$dir/kannel.conf"
    "$bb" "$dir/kannel.conf" > "$dir/bearerbox.out" 2>&1 &
    echo $! > "$dir/bearerbox.pid"
    wait_for 15 curl -sf "http://127.0.0.1:$admin/status.txt?password=$adminpw" ||
        { cat "$dir/bearerbox.out" >&2; die "bearerbox did not answer on admin port $admin"; }
    "$fk" -H 127.0.0.1 -r "$smscp" -m 0 "10690001 10690002 text none" > "$dir/fakesmsc.log" 2>&1 &
    echo $! > "$dir/fakesmsc.pid"
    wait_for 15 smsc_online "$admin" "$adminpw" ||
        { cat "$dir/fakesmsc.log" >&2; die "fakesmsc did not connect to the fake SMSC on port $smscp"; }
    "$sb" "$dir/kannel.conf" > "$dir/smsbox.out" 2>&1 &
    echo $! > "$dir/smsbox.pid"
    wait_for 15 sendsms_answers "$sendp" ||
        { cat "$dir/smsbox.out" >&2; die "smsbox did not answer on sendsms port $sendp"; }
    {
        echo "KANNEL_SENDSMS_URL=http://127.0.0.1:$sendp/cgi-bin/sendsms"
        echo "KANNEL_USER=possum"
        echo "KANNEL_PASSWORD=$pw"
        echo "KANNEL_FROM=10690001"
        echo "KANNEL_FAKESMSC_LOG=$dir/fakesmsc.log"
    } > "$dir/kannel.env"
    chmod 600 "$dir/kannel.env"
    cat "$dir/kannel.env"
}

# stop DIR: SIGTERM to all three at once (each takes about 2 s to exit), wait up to 10 s,
# then SIGKILL what is left.
stop() {
    local dir=$1 pid pids=""
    for name in smsbox fakesmsc bearerbox; do
        [ -f "$dir/$name.pid" ] || continue
        pid=$(cat "$dir/$name.pid")
        kill -TERM "$pid" 2>/dev/null && pids="$pids $pid"
        rm -f "$dir/$name.pid"
    done
    for _ in $(seq 1 50); do
        local alive=""
        for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
        pids=$alive
        [ -z "$pids" ] && return 0
        sleep 0.2
    done
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
}

case "${1:-}" in
start) [ $# -eq 6 ] || die "usage: $0 start DIR ADMIN_PORT SMSBOX_PORT SMSC_PORT SENDSMS_PORT"
       start "$2" "$3" "$4" "$5" "$6" ;;
stop)  [ $# -eq 2 ] || die "usage: $0 stop DIR"
       stop "$2" ;;
*)     die "usage: $0 start DIR ADMIN SMSBOX SMSC SENDSMS | stop DIR" ;;
esac
