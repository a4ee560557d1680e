#!/bin/sh
# test_ca_cli.sh POSSUM: `possum ca` end to end through the real binary: init (a second one
# refused), issue and its refusals (role, name, purpose, a bare key for TLS), list, show and
# check, revoke by CN, a fresh CRL, the exit codes (0 ok, 1 failed, 2 usage).
set -u
P=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
dir=$(mktemp -d "${TMPDIR:-/tmp}/possum-cacli.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
unset POSSUM_CA_PASSPHRASE
fails=0
# expect RC DESCRIPTION -- command...: run it, compare the exit code; output in $dir/out
expect() {
    want=$1; what=$2; shift 3
    "$@" > out 2>&1
    got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL: $what: exit $got, expected $want"; cat out; fails=$((fails + 1))
    fi
}
has() { grep -q -- "$1" out || { echo "FAIL: '$1' not in:"; cat out; fails=$((fails + 1)); }; }

expect 0 "help" -- "$P" ca --help
expect 2 "no subcommand" -- "$P" ca
expect 0 "init" -- "$P" ca init --dir ca --name "cli CA"
has "fingerprint"
expect 1 "second init" -- "$P" ca init --dir ca
has "already holds a CA"
expect 0 "issue operator" -- "$P" ca issue --dir ca --role operator --name alice --out alice
has "operator:alice"
[ -f alice.key ] && [ "$(stat -c %a alice.key)" = 600 ] || { echo "FAIL: alice.key mode"; fails=$((fails + 1)); }
expect 0 "issue mtms" -- "$P" ca issue --dir ca --role mtms --name factory --san 127.0.0.1,mtms.example --out mtms
expect 2 "bad role" -- "$P" ca issue --dir ca --role boss --name x --out x
expect 2 "no name" -- "$P" ca issue --dir ca --role operator --out x
expect 1 "bad name" -- "$P" ca issue --dir ca --role operator --name "a b" --out x
expect 1 "pinpad as tls" -- "$P" ca issue --dir ca --role pinpad --purpose tls --name PP1 --out x
has "cannot have purpose tls"
expect 1 "bare key for tls" -- "$P" ca issue --dir ca --role kms --purpose tls --name C001 --pubkey alice.crt --out x
expect 0 "show and check" -- "$P" ca show --cert alice.crt --ca ca/ca.crt --crl ca/crl.pem
has "check:       OK"
expect 0 "list" -- "$P" ca list --dir ca
has "operator:alice"
has "mtms:factory"
expect 0 "revoke by cn" -- "$P" ca revoke --dir ca --cn operator:alice --reason keyCompromise
has "revoked 1 certificate"
expect 1 "show revoked" -- "$P" ca show --cert alice.crt --ca ca/ca.crt --crl ca/crl.pem
has "certificate revoked (keyCompromise)"
expect 1 "revoke again" -- "$P" ca revoke --dir ca --cn operator:alice
has "no valid certificate"
expect 1 "bad reason" -- "$P" ca revoke --dir ca --cn mtms:factory --reason because
expect 0 "list shows revoked" -- "$P" ca list --dir ca
has "revoked"
has "keyCompromise"
expect 2 "revoke needs one of" -- "$P" ca revoke --dir ca
expect 0 "crl" -- "$P" ca crl --dir ca --crl-days 7
expect 2 "crl days" -- "$P" ca crl --dir ca --crl-days 0
expect 1 "not a CA dir" -- "$P" ca list --dir nowhere

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed"; exit 1
fi
echo "possum ca: all checks passed"
