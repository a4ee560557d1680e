#!/bin/sh
# test_cli.sh POSSUM: `possum iso8583 dump` output and exit codes (0 ok, 1 bad message, 2 usage).
set -u
P=${1:?usage: test_cli.sh path/to/possum}
fails=0

SIGNON=600001000060310031000008000020000000C00012000001313233343536373831323334353637383930313233343500110000000100300003303031
PURCHASE=60000100006031003100000200702404C030C098111962220202001122334450000000000000010000000123251202100012376222020200112233445D2512201000001234500032996222020200112233445D15615600003132333435363738313233343536373839303132333435313536112233445566778826000000000000000011220000010000A1B2C3D4E5F60718
PAN=6222020200112233445

check() { # check NAME WANT_RC GOT_RC
    if [ "$2" != "$3" ]; then echo "FAIL $1: exit $3, want $2"; fails=$((fails + 1)); fi
}
has() { # has NAME TEXT PATTERN
    if ! printf '%s\n' "$2" | grep -qF -- "$3"; then
        echo "FAIL $1: no '$3' in:"; printf '%s\n' "$2"; fails=$((fails + 1))
    fi
}
hasnt() {
    if printf '%s\n' "$2" | grep -qF -- "$3"; then
        echo "FAIL $1: '$3' shown"; fails=$((fails + 1))
    fi
}

out=$("$P" iso8583 dump "003C$SIGNON" 2>&1); rc=$?
check signon-framed 0 $rc
has signon-framed "$out" "length   60 (0x003C)"
has signon-framed "$out" "MTI      0800"
has signon-framed "$out" "TPDU     6000010000"
has signon-framed "$out" "bitmap   0020000000C00012"
has signon-framed "$out" "   60  Reserved private (type, batch, net info)"
has signon-framed "$out" "   63  Reserved private (operator, card org)"

out=$("$P" iso8583 dump --no-length "$SIGNON" 2>&1); rc=$?
check signon-unframed 0 $rc
hasnt signon-unframed "$out" "length "

out=$(printf '%s\n' "$PURCHASE" | "$P" iso8583 dump --dialect unionpay - 2>&1); rc=$?
check purchase-stdin 0 $rc
has purchase-stdin "$out" "622202*********3445"
has purchase-stdin "$out" "622202*********3445=*****************"
has purchase-stdin "$out" "[hidden, 8 bytes]"
hasnt purchase-stdin "$out" "$PAN"
hasnt purchase-stdin "$out" "1122334455667788"
hasnt purchase-stdin "$out" "A1B2C3D4E5F60718"

out=$("$P" iso8583 dump --dialect iso1987 \
      "$(printf '0800822000000000000004000000000000000611120000000001301' | od -An -tx1 | tr -d ' \n')" 2>&1)
rc=$?
check iso1987 0 $rc
has iso1987 "$out" "   70  Network management information code"

# a bad message: exit 1, the error names the field; what was read before it is shown
out=$("$P" iso8583 dump "6000010000603100310000080000200000000000000000" 2>&1); rc=$?
check truncated 1 $rc
has truncated "$out" "field 11: expected 6 digits (3 bytes), 2 bytes remain"
has truncated "$out" "MTI      0800"
out=$("$P" iso8583 dump --length "$SIGNON" 2>&1); rc=$?
check bad-frame-length 1 $rc
has bad-frame-length "$out" "frame length says"
out=$("$P" iso8583 dump "6000" 2>&1); rc=$?
check tpdu 1 $rc
has tpdu "$out" "TPDU: needs 5 bytes, 2 remain"

# usage errors: exit 2
"$P" iso8583 dump >/dev/null 2>&1; check no-hex 2 $?
"$P" iso8583 dump 12345 >/dev/null 2>&1; check odd-hex 2 $?
"$P" iso8583 dump XYZW >/dev/null 2>&1; check not-hex 2 $?
"$P" iso8583 dump --dialect visa 0000 >/dev/null 2>&1; check bad-dialect 2 $?
"$P" iso8583 dump --bogus 0000 >/dev/null 2>&1; check bad-option 2 $?
"$P" iso8583 dump --length --no-length 0000 >/dev/null 2>&1; check both-length 2 $?
"$P" iso8583 >/dev/null 2>&1; check no-subcommand 2 $?
"$P" iso8583 frob >/dev/null 2>&1; check bad-subcommand 2 $?
out=$("$P" iso8583 dump --help 2>&1); rc=$?
check help 0 $rc
has help "$out" "usage: possum iso8583 dump"
"$P" iso8583 --help >/dev/null 2>&1; check help-group 0 $?

if [ $fails -ne 0 ]; then echo "$fails failures"; exit 1; fi
echo "test_cli: all passed"
