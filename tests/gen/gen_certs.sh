#!/bin/sh
# Certificates in every format kigen reads, made with real openssl (run by make_fixtures.sh).
#
# OUT/certs/ gets a test CA "NACCS Client CA", leaves with fixed dates around the reference
# time 2026-11-24T12:00:00Z (one per SPEC §5 state), and each container format. Beside the
# inputs, NAME.sha256 lists the SHA-256 fingerprints of the certificates NAME holds, in file
# order, as openssl computes them; LEAF.facts holds openssl's view of one certificate.
set -eu
out=${1:?usage: gen_certs.sh OUTDIR}/certs
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
rm -rf "$out"
mkdir -p "$out"
cd "$out"
ca_init "$out/ca" "NACCS Client CA"
cp ca/ca.pem ca/ca.key .

leaf ok            tanaka      20240101000000Z 20290201000000Z
leaf renewal_open  suzuki      20211201000000Z 20261214120000Z
leaf critical      sato        20211201000000Z 20261127120000Z
leaf expired       takahashi   20211001000000Z 20261101000000Z
leaf not_yet_valid watanabe    20261201000000Z 20320101000000Z
leaf boundary      ito         20211201000000Z 20261222120000Z
leaf renewed       sato        20261120000000Z 20311220000000Z

facts() {
    {
        echo "sha256 $(fp "$1")"
        echo "subject $(openssl x509 -in "$1" -noout -subject -nameopt RFC2253,-esc_msb | sed 's/^subject=//')"
        echo "issuer $(openssl x509 -in "$1" -noout -issuer -nameopt RFC2253,-esc_msb | sed 's/^issuer=//')"
        echo "serial $(openssl x509 -in "$1" -noout -serial | sed 's/^serial=//' | tr A-F a-f | sed 's/^0*//; s/^$/0/')"
        echo "not_before $(date -u -d "$(openssl x509 -in "$1" -noout -startdate | sed 's/^notBefore=//')" +%s)"
        echo "not_after $(date -u -d "$(openssl x509 -in "$1" -noout -enddate | sed 's/^notAfter=//')" +%s)"
    } >"$2"
}
# Names beyond ASCII are shown as UTF-8 (.crt: not one of the *.pem the e2e tests copy).
openssl req -x509 -utf8 -newkey rsa:2048 -nodes -keyout utf8.key -days 365 -out utf8.crt \
    -subj "/C=JP/O=株式会社 例/CN=田中 太郎+UID=tanaka" 2>/dev/null
rm -f utf8.key
# A holder's own address (SPEC §12): in subjectAltName, and only in the subject's emailAddress.
openssl req -x509 -newkey rsa:2048 -nodes -keyout email.key -days 365 -out email_san.crt \
    -subj "/C=JP/CN=tanaka/emailAddress=dn@example.co.jp" \
    -addext "subjectAltName=DNS:example.co.jp,email:tanaka@example.co.jp" 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout email.key -days 365 -out email_dn.crt \
    -subj "/C=JP/CN=suzuki/emailAddress=suzuki@example.co.jp" 2>/dev/null
rm -f email.key
for n in ok renewal_open critical expired not_yet_valid boundary renewed ca utf8; do
    f=$n.pem
    [ -f "$f" ] || f=$n.crt
    facts "$f" "$n.facts"
done

# PEM: one, a bundle with a key and prose between blocks, a trusted certificate.
cp ok.pem single.pem
fp ok.pem >single.pem.sha256
{
    echo "Bag Attributes: a comment openssl pkcs12 writes"
    cat ok.pem
    cat ok.key
    echo "some prose"
    cat expired.pem ca.pem
} >bundle.pem
{ fp ok.pem; fp expired.pem; fp ca.pem; } >bundle.pem.sha256
openssl x509 -in ok.pem -addtrust clientAuth -out trusted.pem
fp ok.pem >trusted.pem.sha256
# A bundle whose middle block has a broken body: the others must still be read.
{
    cat ok.pem
    echo "-----BEGIN CERTIFICATE-----"
    echo "MIIBroken!!!notbase64***"
    echo "-----END CERTIFICATE-----"
    cat expired.pem
} >damaged.pem
# A block that never ends must not swallow the next; bytes that are not text are damage too.
{
    cat ok.pem
    printf -- '-----BEGIN CERTIFICATE-----\nMIIB\n'
    cat expired.pem ca.pem
} >noend.pem
{
    cat ok.pem
    printf '\001\002\003\377\376garbage\000\n'
    cat expired.pem
} >binary.pem
cp ok.key lonekey.pem

# DER.
openssl x509 -in ok.pem -outform DER -out single.der
fp ok.pem >single.der.sha256
openssl pkey -in ok.key -outform DER -out lonekey.der
# Two DER certificates one after the other, and one followed by bytes that are none.
openssl x509 -in expired.pem -outform DER -out expired.der
cat single.der expired.der >twoder.der
{ fp ok.pem; fp expired.pem; } >twoder.der.sha256
{ cat single.der; printf 'junkjunk'; } >derjunk.der
rm expired.der
# DER that holds no certificate gives no record: keys (SEC1 EC, PKCS#1 in lonekey.der, PKCS#8, encrypted PKCS#8), a
# CSR, a CRL. DER that is no whole structure is damage: an outer length that is not the
# file's, a SEQUENCE of garbage, a truncated key, a key followed by junk.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -outform DER -out key.der
openssl pkcs8 -topk8 -in ok.key -outform DER -passout pass:Tanaka-2026 -out key.p8.der
openssl pkcs8 -topk8 -in ok.key -outform DER -nocrypt -out key.p8plain.der
openssl req -new -key ok.key -subj "/CN=tanaka" -outform DER -out csr.der
openssl ca -gencrl -batch -config ca/ca.cnf -cert ca.pem -keyfile ca.key -crldays 30 \
    -out crl.pem 2>/dev/null
openssl crl -in crl.pem -outform DER -out crl.der
rm crl.pem # the e2e tests copy the *.pem: keep to certificates there
garbage() { # N bytes that look random, the same on every run
    head -c "$1" /dev/zero | openssl enc -aes-128-ctr -K 6b6967656e2069737375652031320000 \
        -iv 00000000000000000000000000000000 -nosalt
}
{ printf '\060\202\020\000'; garbage 600; } >derbadlen.p12
{ printf '\060\202\002\130'; garbage 600; } >dergarbage.der
head -c 100 key.der >dertruncated.der
{ cat lonekey.der; printf 'junk'; } >derkeyjunk.der

# PKCS#7, DER and PEM, with a chain.
openssl crl2pkcs7 -nocrl -certfile ok.pem -certfile ca.pem -outform DER -out chain.p7b
openssl crl2pkcs7 -nocrl -certfile ok.pem -certfile ca.pem -out chain.p7b.pem
{ fp ok.pem; fp ca.pem; } >chain.p7b.sha256
cp chain.p7b.sha256 chain.p7b.pem.sha256
# The other labels OpenSSL reads as PKCS#7.
for label in "PKCS #7 SIGNED DATA" CMS; do
    f=$(echo "$label" | tr -d ' #' | tr A-Z a-z).p7b.pem
    sed "s/ PKCS7-----/ $label-----/" chain.p7b.pem >"$f"
    cp chain.p7b.sha256 "$f.sha256"
done
# Three certificates whose second does not decode: the tag of its serialNumber (the first
# INTEGER of its TBSCertificate, asn1parse depth 6) becomes OCTET STRING, which keeps every
# length and so the framing of the SET around it.
openssl crl2pkcs7 -nocrl -certfile ok.pem -certfile expired.pem -certfile ca.pem -outform DER \
    -out damaged.p7b
at=$(openssl asn1parse -inform DER -in damaged.p7b |
    awk -F: '/d=4 .*SEQUENCE/ { n++ } n == 2 && /d=6 .*prim: INTEGER/ { print $1 + 0; exit }')
[ "$(od -An -tx1 -j "$at" -N1 damaged.p7b | tr -d ' ')" = 02 ]
printf '\004' | dd of=damaged.p7b bs=1 seek="$at" conv=notrunc 2>/dev/null
! openssl pkcs7 -inform DER -in damaged.p7b -print_certs >/dev/null 2>&1
# Several PKCS#7 blocks in one PEM file, the last one damaged as above.
openssl crl2pkcs7 -nocrl -certfile expired.pem -certfile renewed.pem >multi.p7b.pem.tmp
{
    cat chain.p7b.pem
    echo "prose between the blocks"
    cat multi.p7b.pem.tmp
} >multi.p7b.pem
{ fp ok.pem; fp ca.pem; fp expired.pem; fp renewed.pem; } >multi.p7b.pem.sha256
{
    cat multi.p7b.pem
    openssl base64 -in damaged.p7b | sed '1s/^/-----BEGIN PKCS7-----\n/; $s/$/\n-----END PKCS7-----/'
} >multidamaged.p7b.pem
rm multi.p7b.pem.tmp

# PKCS#12 in every protection OpenSSL 3 writes; each holds leaf, key and CA (bag order:
# leaf then CA, as openssl writes them).
p12() {
    name=$1
    shift
    openssl pkcs12 -export -inkey ok.key -in ok.pem -certfile ca.pem -out "$name" "$@"
    { fp ok.pem; fp ca.pem; } >"$name.sha256"
}
p12 modern.p12 -passout pass:Tanaka-2026
p12 legacy.p12 -legacy -passout pass:Tanaka-2026
p12 des3.p12 -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES -passout pass:Tanaka-2026
p12 nomac.p12 -nomac -certpbe AES-256-CBC -passout pass:Tanaka-2026
p12 clearcerts.p12 -certpbe NONE -passout pass:Tanaka-2026
p12 nopass.p12 -certpbe NONE -keypbe NONE -nomac -passout pass:
p12 emptypass.p12 -passout pass:
p12 sidecar.p12 -passout 'pass:Side car!'
printf 'Side car!\r\n' >sidecar.p12.pass
echo Tanaka-2026 >password.txt
head -c 700 modern.p12 >truncated.p12
{ printf '\001'; head -c 4095 /dev/urandom; } >random.bin
: >empty.p12
