#!/bin/sh
# A CA that revokes (SPEC §13), made with real `openssl ca` by the test itself, for the loopback
# ports it chose (so not one of make_fixtures.sh's gen_*.sh):
#
#   revocation_ca.sh OUTDIR HTTP_PORT DOWN_PORT OCSP_PORT
#
# OUTDIR/ca/        the CA "Kigen Revocation Test CA" (ca.pem, ca.key, index.txt for ocsp)
# OUTDIR/certs/     one PEM per case, signed by the CA, valid 2026-01-01 .. 2031-02-01:
#   good.pem          CRL http://127.0.0.1:HTTP_PORT/ca.crl; not revoked
#   revoked.pem       the same CRL; revoked (keyCompromise)
#   ocsp-good.pem     no CRL; OCSP http://127.0.0.1:OCSP_PORT/; not revoked
#   ocsp-revoked.pem  no CRL; the same OCSP; revoked (superseded)
#   foreign.pem       CRL http://localhost:HTTP_PORT/ca.crl: a host revocation.hosts leaves out
#   badsig.pem        CRL http://127.0.0.1:HTTP_PORT/bad.crl: signed by another key, same name
#   stale.pem         CRL http://127.0.0.1:HTTP_PORT/stale.crl: first stale, then fresh
#   down.pem          CRL http://127.0.0.1:DOWN_PORT/ca.crl: nobody listens there
# OUTDIR/crl/       ca.crl and ca.crl.pem (fresh: next update in 30 days), stale.crl and
#                   stale.crl.pem (next update 2026-02-01), bad.crl (the other key's)
set -eu
out=${1:?usage: revocation_ca.sh OUTDIR HTTP_PORT DOWN_PORT OCSP_PORT}
http=${2:?}
down=${3:?}
ocsp=${4:?}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
rm -rf "$out"
mkdir -p "$out/certs" "$out/crl"
out=$(cd "$out" && pwd)

ca_init "$out/ca" "Kigen Revocation Test CA"
cat >>"$out/ca/ca.cnf" <<CNF
[ crl_ext ]
authorityKeyIdentifier = keyid:always
CNF

# leaf NAME EXTENSIONS: certs/NAME.pem signed by the CA.
rleaf() {
    printf '[ ext ]\nbasicConstraints = CA:false\nkeyUsage = digitalSignature\n%s\n' "$2" \
        >"$out/$1.ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$out/$1.key" -out "$out/$1.csr" -subj "/C=JP/O=Example Trading/CN=$1" 2>/dev/null
    openssl ca -batch -config "$out/ca/ca.cnf" -cert "$out/ca/ca.pem" -keyfile "$out/ca/ca.key" \
        -extfile "$out/$1.ext" -extensions ext -startdate 20260101000000Z \
        -enddate 20310201000000Z -in "$out/$1.csr" -out "$out/certs/$1.pem" -notext 2>/dev/null
    rm -f "$out/$1.csr" "$out/$1.ext" "$out/$1.key"
}

crl() {
    echo "crlDistributionPoints = URI:$1"
}

rleaf good "$(crl "http://127.0.0.1:$http/ca.crl")"
rleaf revoked "$(crl "http://127.0.0.1:$http/ca.crl")"
rleaf ocsp-good "authorityInfoAccess = OCSP;URI:http://127.0.0.1:$ocsp/"
rleaf ocsp-revoked "authorityInfoAccess = OCSP;URI:http://127.0.0.1:$ocsp/"
rleaf foreign "$(crl "http://localhost:$http/ca.crl")"
rleaf badsig "$(crl "http://127.0.0.1:$http/bad.crl")"
rleaf stale "$(crl "http://127.0.0.1:$http/stale.crl")"
rleaf down "$(crl "http://127.0.0.1:$down/ca.crl")"

ca() {
    openssl ca -batch -config "$out/ca/ca.cnf" -cert "$out/ca/ca.pem" -keyfile "$out/ca/ca.key" \
        "$@" 2>/dev/null
}
ca -revoke "$out/certs/revoked.pem" -crl_reason keyCompromise
ca -revoke "$out/certs/ocsp-revoked.pem" -crl_reason superseded
ca -gencrl -crlexts crl_ext -crldays 30 -out "$out/crl/ca.crl.pem"
openssl crl -in "$out/crl/ca.crl.pem" -outform DER -out "$out/crl/ca.crl"
ca -gencrl -crlexts crl_ext -crl_lastupdate 20260101000000Z -crl_nextupdate 20260201000000Z \
    -out "$out/crl/stale.crl.pem"
openssl crl -in "$out/crl/stale.crl.pem" -outform DER -out "$out/crl/stale.crl"

# The same name, another key: a CRL nobody may believe.
ca_init "$out/other" "Kigen Revocation Test CA"
openssl ca -batch -config "$out/other/ca.cnf" -cert "$out/other/ca.pem" \
    -keyfile "$out/other/ca.key" -gencrl -crldays 30 -out "$out/crl/bad.crl.pem" 2>/dev/null
openssl crl -in "$out/crl/bad.crl.pem" -outform DER -out "$out/crl/bad.crl"
