#!/bin/sh
# test_keytool.sh POSSUM: the `possum keytool` contract, end to end. Known answers are the
# ones in tests/vectors/*.ini (sources there): bare upper-case hex on stdout and exit 0; on
# bad input a one-line message naming the argument on stderr, nothing on stdout, exit 1;
# a missing option or unknown subcommand exits 2; --help exits 0.
set -u
POSSUM=${1:?usage: test_keytool.sh path/to/possum}
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
fails=0
count=0

run() { # run ARGS...: sets $rc, $out, $err
    "$POSSUM" keytool "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    out=$(cat "$TMP/out")
    err=$(cat "$TMP/err")
}

bad() {
    echo "FAIL: $1" >&2
    echo "  exit=$rc stdout=[$out] stderr=[$err]" >&2
    fails=$((fails + 1))
}

# ok WANT ARGS...: exit 0, stdout exactly WANT, stderr empty
ok() {
    want=$1; shift
    count=$((count + 1)); run "$@"
    [ "$rc" -eq 0 ] && [ "$out" = "$want" ] && [ -z "$err" ] || bad "keytool $* (want $want)"
}

# okre REGEX ARGS...: exit 0, stdout a single line matching REGEX
okre() {
    re=$1; shift
    count=$((count + 1)); run "$@"
    [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -Eqx "$re" || bad "keytool $* (want /$re/)"
}

# fail CODE WORD ARGS...: exit CODE, nothing on stdout, one stderr line containing WORD
fail() {
    code=$1; word=$2; shift 2
    count=$((count + 1)); run "$@"
    lines=$(printf '%s\n' "$err" | wc -l)
    [ "$rc" -eq "$code" ] && [ -z "$out" ] && [ "$lines" -eq 1 ] &&
        printf '%s' "$err" | grep -qF -- "$word" || bad "keytool $* (want exit $code naming $word)"
}

# xor32 A B: XOR of two hex strings of equal length, 8 digits at a time (portable sh)
xor_hex() {
    a=$1; b=$2; r=""
    while [ -n "$a" ]; do
        ca=$(printf '%s' "$a" | cut -c1-8); cb=$(printf '%s' "$b" | cut -c1-8)
        r="$r$(printf '%08X' $((0x$ca ^ 0x$cb)))"
        a=$(printf '%s' "$a" | cut -c9-); b=$(printf '%s' "$b" | cut -c9-)
    done
    printf '%s' "$r"
}

K2=0123456789ABCDEFFEDCBA9876543210
NOW=4E6F77206973207468652074696D6520666F7220616C6C20

# kcv
ok 08D7B4 kcv --key $K2
ok 57C409 kcv --key 3F419E1CB7079442AA37474C2EFBF8B8
ok 08793E25AB kcv --aes --key 3F419E1CB7079442AA37474C2EFBF8B8
ok D77F007724 kcv --aes --key FA36E44278DB3AB5F298F9F7DA8F1F88

# pinblock
ok 041261AAAAEDCBA9 pinblock --format 0 --pin 1234 --pan 5555555551234567
ok 041274EDCBA9876F pinblock --format 0 --pin 1234 --pan 4012345678909
okre '141234[0-9A-F]{10}' pinblock --format 1 --pin 1234
okre '34[0-9A-F]{14}' pinblock --format 3 --pin 1234 --pan 5555555551234567
okre '441234AAAAAAAAAA[0-9A-F]{16}' pinblock --format 4 --pin 1234 --pan 4111111111111111
# format 4 with a key: decipher by hand (ISO 9564-1 9.4.5) and find the PIN field again
K4=AF8CB133A78F8DC2D1359F18527593FB
PANF=44111111111111111000000000000000
okre '[0-9A-F]{32}' pinblock --format 4 --pin 1234 --pan 4111111111111111 --key $K4
C=$out
run decrypt --alg aes-ecb --key $K4 --data "$C"; B=$out
run decrypt --alg aes-ecb --key $K4 --data "$(xor_hex "$B" $PANF)"
count=$((count + 1))
printf '%s' "$out" | grep -Eq '^441234AAAAAAAAAA' || bad "format 4 block does not decipher to its PIN field"

# mac
ok A1C72E74EA3FA9B6 mac --alg x919 --key $K2 --data $NOW
ok 9CCC78173FC4FB64 mac --alg x919 --key 042666B4918430A368DE9628D03984C9 --data 3430313233343536373839303944393837
ok 70A30640CC76DD8B mac --alg iso9797-1 --key 0123456789ABCDEF --data $NOW
ok 2988AE5A mac --alg pboc --key 9B1D924E05595603 --data 000000000000100001001122334455
ok 4532363742364532 mac --alg cup-ecb --key 2222222222222222 --data 1234567890ABCDEFABCDEF1234567890
ok 4FF2AB813C53CE83 mac --alg cmac --key 4CF15134A2850DD58A3D10BA80570D38 --data 6BC1BEE22E409F96
ok 070A16B46B4D4144F79BDD9DD04A287C mac --alg cmac --aes --key 2B7E151628AED2A6ABF7158809CF4F3C --data 6BC1BEE22E409F96E93D7E117393172A
ok BB1D6929E95937287FA37D129B756746 mac --alg aes-cmac --key 2B7E151628AED2A6ABF7158809CF4F3C --data ""

# dukpt (TDES: X9.24-1:2009 A.4; AES: X9.24-3:2017 supplement)
ok 6AC292FAA1315B4D858AB3A3D7D5933A dukpt --bdk $K2 --ksn FFFF9876543210E00000 --ipek
ok 042666B49184CFA368DE9628D0397BC9 dukpt --bdk $K2 --ksn FFFF9876543210E00001
ok 042666B49184CF5C68DE9628D0397B36 dukpt --bdk $K2 --ksn FFFF9876543210E00001 --variant pin
ok 042666B4918430A368DE9628D03984C9 dukpt --bdk $K2 --ksn FFFF9876543210E00001 --variant mac
ok 448D3F076D8304036A55A3D7E0055A78 dukpt --bdk $K2 --ksn FFFF9876543210E00001 --variant data
ok AA4D58DB653EC74A48C75F2F047DD2B5 dukpt --bdk $K2 --ksn FFFF9876543210F00000
BDKA=FEDCBA9876543210F1F1F1F1F1F1F1F1
ok 1273671EA26AC29AFA4D1084127652A1 dukpt --aes --bdk $BDKA --ksn 123456789012345600000001 --ipek
ok 4F21B565BAD9835E112B6465635EAE44 dukpt --aes --bdk $BDKA --ksn 123456789012345600000001
ok AF8CB133A78F8DC2D1359F18527593FB dukpt --aes --bdk $BDKA --ksn 123456789012345600000001 --variant pin
ok A2DC23DE6FDE0824A2BC321E08E4B8B7 dukpt --aes --bdk $BDKA --ksn 123456789012345600000001 --variant mac
ok A35C412EFD41FDB98B69797C02DCD08F dukpt --aes --bdk $BDKA --ksn 123456789012345600000001 --variant data
ok 630C706D9546E47D4449313F61C4D4AB dukpt --aes --bdk $BDKA --ksn 123456789012345600000001 --variant pin --key-type 2tdea

# tr31 (TR-31:2018 A.7.2.2 and A.7.4)
KBPKD=88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6
BLKD=D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A27E8E31DA05F7425509593D03A457DC34
ok 3F419E1CB7079442AA37474C2EFBF8B8 tr31 unwrap --kbpk $KBPKD --block $BLKD
ok 3F419E1CB7079442AA37474C2EFBF8B8 tr31 unwrap --kbpk DD7515F2BFC17F85CE48F3CA25CB21F6 --block B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E
okre 'D0112P0AE00E0000[0-9A-F]{96}' tr31 wrap --kbpk $KBPKD --header D0000P0AE00E0000 --key 3F419E1CB7079442AA37474C2EFBF8B8
ok 3F419E1CB7079442AA37474C2EFBF8B8 tr31 unwrap --kbpk $KBPKD --block "$out"
okre 'B0[0-9]{3}K0TB00N0100KS18FFFF9876543210E00000[0-9A-F]+' tr31 wrap --kbpk $K2 --header B0000K0TB00N0100KS18FFFF9876543210E00000 --key 89E88CF7931444F334BD7547FC3F380C
ok 89E88CF7931444F334BD7547FC3F380C tr31 unwrap --kbpk $K2 --block "$out"

# encrypt / decrypt
ok 96D605EA176B7E9E encrypt --alg tdes-ecb --key 70F2A84CCBC2AE8625CBB0F2C22AB923 --data C24A8FB57AA20123
ok C24A8FB57AA20123 decrypt --alg tdes-ecb --key 70F2A84CCBC2AE8625CBB0F2C22AB923 --data 96D605EA176B7E9E
ok F85D4AB92066789E1D0430671F28AE7AB9627D35385D2E24 encrypt --alg tdes-cbc --key $K2 --iv 1234567890ABCDEF --data $NOW
ok 69C4E0D86A7B0430D8CDB78070B4C55A encrypt --alg aes-ecb --key 000102030405060708090A0B0C0D0E0F --data 00112233445566778899AABBCCDDEEFF
ok 7649ABAC8119B246CEE98E9B12E9197D encrypt --alg aes-cbc --key 2B7E151628AED2A6ABF7158809CF4F3C --iv 000102030405060708090A0B0C0D0E0F --data 6BC1BEE22E409F96E93D7E117393172A
ok 6BC1BEE22E409F96E93D7E117393172A decrypt --alg aes-cbc --key 2B7E151628AED2A6ABF7158809CF4F3C --iv 000102030405060708090A0B0C0D0E0F --data 7649ABAC8119B246CEE98E9B12E9197D

# derive
ok A92FD76424820AD168D81E7EC5F9FA68 derive --master $K2 --data 1234567890123456
ok 63FAF36D19571FCE65E9962594D376D7 derive --master $K2 --data 00000000000000010000000000000002

# bad input: exit 1, one line naming the argument, nothing on stdout
fail 1 --key kcv --key 0123456789ABCDEFFEDCBA987654321
fail 1 --key kcv --key 0123456789ABCDEFFEDCBA98765432XY
fail 1 --key kcv --key 0123456789ABCDEF0123
fail 1 --key kcv --aes --key 0123456789ABCDEF
fail 1 --pan pinblock --format 0 --pin 1234 --pan 55555555512345A7
fail 1 --pin pinblock --format 0 --pin 123 --pan 5555555551234567
fail 1 --pin pinblock --format 0 --pin 1234567890123 --pan 5555555551234567
fail 1 --pin pinblock --format 3 --pin 12a4 --pan 5555555551234567
fail 1 --format pinblock --format 2 --pin 1234 --pan 5555555551234567
fail 1 --key pinblock --format 4 --pin 1234 --pan 4111111111111111 --key 0123456789ABCDEF
fail 1 --alg mac --alg md5 --key $K2 --data $NOW
fail 1 --key mac --alg x919 --key 0123456789ABCDEF --data $NOW
fail 1 --data mac --alg x919 --key $K2 --data 123
fail 1 --alg encrypt --alg rc4-cbc --key $K2 --data $NOW
fail 1 --data encrypt --alg tdes-ecb --key $K2 --data 0011223344
fail 1 --key encrypt --alg aes-ecb --key $K2$K2$K2 --data 00112233445566778899AABBCCDDEEFF
fail 1 --iv encrypt --alg aes-cbc --key $K2 --iv 0011 --data 00112233445566778899AABBCCDDEEFF
fail 1 --bdk dukpt --bdk 0123456789ABCDEF --ksn FFFF9876543210E00001
fail 1 --ksn dukpt --bdk $K2 --ksn FFFF9876543210E001
fail 1 --ksn dukpt --bdk $K2 --ksn FFFF9876543210E00000
fail 1 --variant dukpt --bdk $K2 --ksn FFFF9876543210E00001 --variant foo
fail 1 --bdk dukpt --aes --bdk 0123456789ABCDEF0123 --ksn 123456789012345600000001
fail 1 MAC tr31 unwrap --kbpk $KBPKD --block D0112P0AE00N0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A27E8E31DA05F7425509593D03A457DC34
fail 1 --header tr31 wrap --kbpk $KBPKD --header X0000P0AE00E0000 --key 3F419E1CB7079442AA37474C2EFBF8B8
fail 1 --master derive --master 0123456789ABCDEF --data 1234567890123456
fail 1 --data derive --master $K2 --data 123456789012

# usage errors: exit 2
fail 2 --key kcv
fail 2 --pan pinblock --format 0 --pin 1234
fail 2 --data mac --alg x919 --key $K2
fail 2 --ksn dukpt --bdk $K2
fail 2 --block tr31 unwrap --kbpk $K2
fail 2 unknown kcv --key $K2 --colour blue
fail 2 frobnicate frobnicate
fail 2 --ipek dukpt --bdk $K2 --ksn FFFF9876543210E00001 --ipek --variant pin
count=$((count + 1)); run; [ "$rc" -eq 2 ] || bad "keytool with no subcommand"

# --help on each: exit 0, usage on stdout
for sub in kcv pinblock mac dukpt encrypt decrypt derive "tr31 wrap" "tr31 unwrap"; do
    count=$((count + 1))
    # shellcheck disable=SC2086
    run $sub --help
    [ "$rc" -eq 0 ] && printf '%s' "$out" | grep -q '^usage: possum keytool' || bad "keytool $sub --help"
done

echo "keytool: $count checks, $fails failed"
[ "$fails" -eq 0 ]
