#!/bin/sh
# test_cli.sh POSSUM FAKESWITCH: `possum pos` as an operator and a script use it, against
# the fake switch: init with TMK components, sign-on, purchase, status, mobile-number
# payment, void, settle, the interactive screen fed from a pipe, exit statuses, and no
# clear PAN or PIN in any file the terminal wrote.
set -u
POSSUM=$1
FAKE=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/possum-poscli.XXXXXX")
fifo=$dir/hold
mkfifo "$fifo"
"$FAKE" "$dir/port" < "$fifo" &
fakepid=$!
exec 9> "$fifo" # the fake switch serves while fd 9 is open
fail=0
cleanup() { exec 9>&-; wait "$fakepid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
for i in 1 2 3 4 5 6 7 8 9 10; do [ -s "$dir/port" ] && break; sleep 0.2; done
port=$(cat "$dir/port")
PAN=6222021234567890128
P="$POSSUM pos --data $dir/t --port $port --timeout-ms 2000"

expect() { # expect STATUS PATTERN command...
    want=$1; pat=$2; shift 2
    out=$("$@" 2>&1); got=$?
    if [ "$got" -ne "$want" ] || ! printf '%s\n' "$out" | grep -q -- "$pat"; then
        printf 'FAIL: %s\n  wanted status %s and /%s/, got %s:\n%s\n' "$*" "$want" "$pat" "$got" "$out"
        fail=1
    fi
    LAST=$out
}

expect 0 "created in" $P init
expect 1 "already there" $P init
expect 1 "component 1" $P init --tmk-components 0123456789ABCDEFFEDCBA9876543210:08D7B5,71D1ED2B42696369DB170A6AB47E8B33:FAAD2F
expect 2 "every component or none" $P init --tmk-components 0123456789ABCDEFFEDCBA9876543210:08D7B4,71D1ED2B42696369DB170A6AB47E8B33
expect 1 "combined key" $P init --tmk-components 0123456789ABCDEFFEDCBA9876543210,71D1ED2B42696369DB170A6AB47E8B33 --tmk-kcv 47F817
expect 0 "check value 47F816" $P init --tmk-components 0123456789ABCDEFFEDCBA9876543210:08D7B4,71D1ED2B42696369DB170A6AB47E8B33:FAAD2F --tmk-kcv 47F816
expect 1 "not signed on" $P purchase --amount 100 --card $PAN
expect 0 "signed on, batch 000001" $P signon
expect 0 "APPROVED  amount 12.34 CNY  auth A1B2C3  RRN 000000000001" $P purchase --amount 1234 --card $PAN --pin 1234
expect 2 "check digit" $P purchase --amount 100 --card 6222021234567890127
expect 2 "amount" $P purchase --amount 0 --card $PAN
expect 0 "balance 123.45 CNY" $P balance --card $PAN
expect 1 "REFUSED: payee mobile number: is not a mainland-China mobile number" \
    $P phonepay --payee 12345678901 --payer 13912345678 --amount 5000 --card $PAN --yes
expect 1 "NOT CONFIRMED" $P phonepay --payee 13800138000 --payer 13912345678 --amount 5000 --card $PAN
expect 0 "reconciliation" $P phonepay --payee 13800138000 --payer 13912345678 --amount 5000 \
    --card $PAN --pin 1234 --yes
expect 0 "APPROVED  amount 12.34 CNY" $P void --rrn 000000000001 --stan 000002
expect 1 "already voided" $P void --rrn 000000000001 --stan 000002
expect 0 "08D7B4" $P status --list
expect 0 "3 transactions, 2 debits totalling 62.34 CNY, 1 credit (voids) totalling 12.34 CNY" $P status
expect 0 "settled, balanced" $P settle
expect 0 "answered 0810 with response code 00 (approved)" $P echo --stan 000123
# the screen: sign on, a purchase with the PIN typed on the PIN pad, a bad choice, exit
expect 0 "APPROVED  amount 7.50 CNY" sh -c "printf '1\n2\n7.50\n$PAN\n\n4321\n9\n0\n' | $P screen"
if printf '%s' "$LAST" | grep -q 4321; then echo "FAIL: the PIN appeared on the screen"; fail=1; fi
expect 0 "signed off" $P signoff
if grep -r -l -e "$PAN" -e 622202123456 "$dir/t"; then echo "FAIL: a clear PAN in a file"; fail=1; fi
exit $fail
