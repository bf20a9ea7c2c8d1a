#!/bin/sh
# TLS server certificates for the probe tests, made with real openssl (run by make_fixtures.sh).
#
# OUT/probe/ gets a test CA "Kigen Probe Test CA" (ca.pem) and server certificates with their
# keys, all for the loopback names the tests use (SAN DNS:localhost, IP:127.0.0.1, IP:::1)
# unless said otherwise:
#
#   good.pem       valid from 2026-01-01 until two years from today, signed by the test CA
#   expired.pem    signed by the test CA, ended in 2021
#   wronghost.pem  signed by the test CA, valid, but only for DNS:other.example
#   unknown.pem    valid, signed by a second CA that nobody trusts (unknown-ca.pem)
#
# Both CAs are valid from 2026-01-01 to 2040-01-01: a server's chain joins the inventory with
# its trust anchor (SPEC §8), and `--now` must see neither unborn nor ended.
#
# A chain of three (SPEC §8 probe chains), all dates fixed:
#
#   chain-root.pem   "Kigen Chain Test Root", 2026-01-01 .. 2040-01-01, self-signed
#   chain-inter.pem  "Kigen Chain Test Intermediate", signed by the root, 2026-01-01 .. 2027-06-01
#                    (it ends first)
#   chain.pem        the server, signed by the intermediate, 2026-01-01 .. 2028-01-01
#   chain-extra.pem  chain-inter.pem then ca.pem: what a server sends that also sends a
#                    certificate nothing needs
#
# Beside them, as openssl sees each of good chain chain-inter chain-root ca: NAME.sha256 (the
# DER fingerprint, lowercase hex) and NAME.not_after (notAfter as Unix seconds).
set -eu
out=${1:?usage: gen_probe.sh OUTDIR}/probe
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
rm -rf "$out"
mkdir -p "$out"
cd "$out"

stamp() {
    date -u -d "$1" +%Y%m%d%H%M%SZ
}

# dated_ca DIR CN START END: as ca_init, but the CA is valid from START to END.
dated_ca() {
    ca_init "$1" "$2"
    cat >"$1/ca.ext" <<EXT
[ ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EXT
    openssl req -new -key "$1/ca.key" -out "$1/ca.csr" -subj "/C=JP/O=Test NACCS/CN=$2" \
        2>/dev/null
    openssl ca -batch -selfsign -config "$1/ca.cnf" -keyfile "$1/ca.key" -extfile "$1/ca.ext" \
        -extensions ca -startdate "$3" -enddate "$4" -in "$1/ca.csr" -out "$1/ca.pem" -notext \
        2>/dev/null
    rm -f "$1/ca.csr" "$1/ca.ext"
}

# intermediate NAME CN START END: NAME.pem and NAME.key, a CA signed by the CA of the last
# ca_init; then NAME/ is a CA directory (ca_dir) that signs with it.
intermediate() {
    cat >"$1.ext" <<EXT
[ ca ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EXT
    openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" \
        -subj "/C=JP/O=Test NACCS/CN=$2" 2>/dev/null
    openssl ca -batch -config "$ca_dir/ca.cnf" -cert "$ca_dir/ca.pem" -keyfile "$ca_dir/ca.key" \
        -extfile "$1.ext" -extensions ca -startdate "$3" -enddate "$4" -in "$1.csr" \
        -out "$1.pem" -notext 2>/dev/null
    rm -f "$1.csr" "$1.ext"
    ca_init "$PWD/$1" "$2" # its ca.cnf, index and serial; its key and certificate replace
    cp "$1.pem" "$1/ca.pem"
    cp "$1.key" "$1/ca.key"
}

# facts NAME...: NAME.sha256 and NAME.not_after of each NAME.pem, as openssl sees them.
facts() {
    for name in "$@"; do
        fp "$name.pem" >"$name.sha256"
        date -u -d "$(openssl x509 -in "$name.pem" -noout -enddate | sed 's/^notAfter=//')" +%s \
            >"$name.not_after"
    done
}

# server NAME SAN START END: NAME.pem and NAME.key, signed by the CA of the last ca_init.
server() {
    cat >"$1.ext" <<EXT
[ server ]
basicConstraints = CA:false
keyUsage = digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $2
EXT
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" \
        -out "$1.csr" -subj "/O=Kigen Probe Test/CN=$1" 2>/dev/null
    openssl ca -batch -config "$ca_dir/ca.cnf" -cert "$ca_dir/ca.pem" -keyfile "$ca_dir/ca.key" \
        -extfile "$1.ext" -extensions server -startdate "$3" -enddate "$4" -in "$1.csr" \
        -out "$1.pem" -notext 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

loopback="DNS:localhost, IP:127.0.0.1, IP:::1"
since=20260101000000Z # before every --now the tests use, so --now never sees it unborn
later=$(stamp '2 years')

ca_end=20400101000000Z
dated_ca "$out/ca" "Kigen Probe Test CA" "$since" "$ca_end"
cp ca/ca.pem ca.pem
server good "$loopback" "$since" "$later"
server expired "$loopback" 20200101000000Z 20210101000000Z
server wronghost "DNS:other.example" "$since" "$later"

dated_ca "$out/unknown-ca" "Kigen Unknown Test CA" "$since" "$ca_end"
cp unknown-ca/ca.pem unknown-ca.pem
server unknown "$loopback" "$since" "$later"

dated_ca "$out/chain-ca" "Kigen Chain Test Root" "$since" "$ca_end"
cp chain-ca/ca.pem chain-root.pem
intermediate chain-inter "Kigen Chain Test Intermediate" "$since" 20270601000000Z
server chain "$loopback" "$since" 20280101000000Z
cat chain-inter.pem ca.pem >chain-extra.pem

facts good chain chain-inter chain-root ca
