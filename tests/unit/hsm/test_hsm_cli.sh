#!/bin/sh
# test_hsm_cli.sh POSSUM: `possum hsm` end to end through the real binary: init, generate,
# form (dual control), import/export (the UnionPay work key vector), list, delete, audit
# verify, the exit codes (0 ok, 1 failed, 2 usage), and no clear key left in any file.
set -u
P=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
dir=$(mktemp -d "${TMPDIR:-/tmp}/possum-hsmcli.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
cat > t.ini <<'INI'
[store]
backend = sqlite
path = var/possum.db
[hsm]
lmk_file = var/lmk.bin
audit_file = var/hsm-audit.log
lmk_scrypt_log2n = 10
INI
export POSSUM_LMK_PASSPHRASE="cli test passphrase, long enough"
fails=0
# expect RC DESCRIPTION -- command...: run it, compare the exit code; output in $dir/out
expect() {
    want=$1; what=$2; shift 3
    "$@" > out 2> err
    got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL: $what: exit $got, expected $want"; cat out err; fails=$((fails + 1))
    fi
}
has() { grep -q -- "$1" "$2" || { echo "FAIL: '$1' not in $2:"; cat "$2"; fails=$((fails + 1)); }; }

TMK=70F2A84CCBC2AE8625CBB0F2C22AB923
C1=11111111111111112222222222222222
C2=61E3B95DDAD3BF9707E992D0E0089B01   # TMK xor C1
K1=$("$P" keytool kcv --key $C1)
K2=$("$P" keytool kcv --key $C2)

expect 0 "help" -- "$P" hsm --help
expect 2 "no subcommand" -- "$P" hsm
expect 2 "unknown subcommand" -- "$P" hsm bogus
expect 0 "generate --help" -- "$P" hsm generate --help
has "--exportable" out
expect 0 "init" -- "$P" hsm init -c t.ini
has "LMK check value: " out
expect 1 "init twice" -- "$P" hsm init -c t.ini
has "never overwritten" err
expect 2 "generate without label" -- "$P" hsm generate -c t.ini --usage P0
expect 2 "generate bad --exportable" -- "$P" hsm generate -c t.ini --label X --usage P0 --exportable Q
expect 1 "generate bad mode" -- "$P" hsm generate -c t.ini --label X --usage P0 --mode G
has "mode of use" err
expect 0 "generate ZPK" -- "$P" hsm generate -c t.ini --label ZPK.1 --usage P0 --exportable S
has "kcv:   " out
expect 0 "generate AES KEK" -- "$P" hsm generate -c t.ini --label KEK.aes --usage K1 --alg A --len 32
expect 1 "generate same label" -- "$P" hsm generate -c t.ini --label ZPK.1 --usage P0
has "already exists" err
expect 1 "form, wrong component KCV" -- "$P" hsm form -c t.ini --label TMK.1 --usage K0 --exportable S \
    --components "$C1:$K1,$C2:000000"
has "component 2" err
expect 0 "form TMK" -- "$P" hsm form -c t.ini --label TMK.1 --usage K0 --exportable S --components "$C1:$K1,$C2:$K2"
has "kcv:   $("$P" keytool kcv --key $TMK)" out
expect 0 "import MAK under TMK" -- "$P" hsm import -c t.ini --label MAK.1 --kek TMK.1 --key 96D605EA176B7E9E \
    --usage M1 --alg D --mode C --exportable S
expect 0 "export MAK under TMK" -- "$P" hsm export -c t.ini --label MAK.1 --kek TMK.1
has "cryptogram: 96D605EA176B7E9E" out
expect 1 "export under a PIN key" -- "$P" hsm export -c t.ini --label MAK.1 --kek ZPK.1
expect 0 "export as TR-31 under an AES KBPK" -- "$P" hsm export -c t.ini --label ZPK.1 --kek KEK.aes
has "block:      D" out
expect 0 "generate non-exportable" -- "$P" hsm generate -c t.ini --label PVK.1 --usage V2 --exportable N
expect 1 "export non-exportable" -- "$P" hsm export -c t.ini --label PVK.1 --kek TMK.1
has "non-exportable" err
expect 0 "list" -- "$P" hsm list -c t.ini
has "MAK.1 *M1 *D8 " out
has "TMK.1 *K0 *T16" out
expect 0 "delete" -- "$P" hsm delete -c t.ini --label PVK.1
expect 1 "delete again" -- "$P" hsm delete -c t.ini --label PVK.1
expect 0 "audit verify" -- "$P" hsm audit verify -c t.ini
has "audit OK: " out
expect 2 "audit without verify" -- "$P" hsm audit -c t.ini
expect 1 "wrong passphrase" -- env POSSUM_LMK_PASSPHRASE=wrong-passphrase-here "$P" hsm generate -c t.ini \
    --label Y --usage P0
has "wrong passphrase" err
for secret in $TMK C24A8FB57AA20123 $C1 $C2; do
    if grep -rqi "$secret" var; then echo "FAIL: clear key material $secret found under var/"; fails=$((fails + 1)); fi
done
# an edited entry is found and named, with exit 1
sed -i '5s/"caller":"cli:/"caller":"CLI:/' var/hsm-audit.log
expect 1 "audit verify after an edit" -- "$P" hsm audit verify -c t.ini --chain-only
has "line 5" err
[ "$fails" -eq 0 ] && echo "test_hsm_cli: all passed"
exit "$fails"
