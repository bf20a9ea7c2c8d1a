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
# Beside them, as openssl sees good.pem: good.sha256 (the DER fingerprint, lowercase hex) and
# good.not_after (notAfter as Unix seconds).
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

ca_init "$out/ca" "Kigen Probe Test CA"
cp ca/ca.pem ca.pem
server good "$loopback" "$since" "$later"
server expired "$loopback" 20200101000000Z 20210101000000Z
server wronghost "DNS:other.example" "$since" "$later"

ca_init "$out/unknown-ca" "Kigen Unknown Test CA"
cp unknown-ca/ca.pem unknown-ca.pem
server unknown "$loopback" "$since" "$later"

fp good.pem >good.sha256
date -u -d "$(openssl x509 -in good.pem -noout -enddate | sed 's/^notAfter=//')" +%s \
    >good.not_after
