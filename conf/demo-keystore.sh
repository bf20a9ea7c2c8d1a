#!/bin/sh
# Makes the demo for `make demo`: a keystore tree with certificates in every state (dated
# relative to today) and every format kigen reads, some files it cannot read, and a config.
set -eu
out=${1:?usage: demo-keystore.sh OUTDIR}
src=$(cd "$(dirname "$0")/.." && pwd)
. "$src/tests/gen/lib.sh"
rm -rf "$out"
mkdir -p "$out/keystore/naccs-users" "$out/keystore/tls" "$out/keystore/java"
out=$(cd "$out" && pwd)
ca_init "$out/ca" "NACCS Client CA"
day() { date -u -d "$1" +%Y%m%d%H%M%SZ; }

cd "$out/keystore/naccs-users"
# NACCS user certificates: PKCS#12, valid 5 years and 1 month, passwords from a file or a
# sidecar FILE.pass (SPEC §4).
leaf tanaka    "tanaka"    "$(day '-2 years')" "$(day '+3 years')"
leaf suzuki    "suzuki"    "$(day '-5 years')" "$(day '+20 days')"
leaf sato      "sato"      "$(day '-5 years')" "$(day '+3 days')"
leaf takahashi "takahashi" "$(day '-5 years -1 month')" "$(day '-24 days')"
leaf watanabe  "watanabe"  "$(day '+10 days')" "$(day '+5 years +1 month +10 days')"
for u in tanaka suzuki sato takahashi watanabe; do
    openssl pkcs12 -export -inkey $u.key -in $u.pem -certfile "$out/ca/ca.pem" \
        -out $u.p12 -passout pass:Demo-Pass1
    rm -f $u.key $u.pem
done
# One user's file has its own password in a sidecar; one has a password nobody configured.
leaf ito ito "$(day '-1 year')" "$(day '+4 years')"
openssl pkcs12 -export -inkey ito.key -in ito.pem -out ito.p12 -passout pass:Ito-Own-9
printf 'Ito-Own-9\n' >ito.p12.pass
leaf yamada yamada "$(day '-1 year')" "$(day '+4 years')"
openssl pkcs12 -export -inkey yamada.key -in yamada.pem -out yamada.p12 -passout pass:Lost-Pass
rm -f ito.key ito.pem yamada.key yamada.pem

cd "$out/keystore/tls"
leaf www "www.example.co.jp" "$(day '-300 days')" "$(day '+65 days')"
leaf api "api.example.co.jp" "$(day '-300 days')" "$(day '+12 days')"
cat www.pem "$out/ca/ca.pem" >www-chain.pem
openssl x509 -in api.pem -outform DER -out api.der
openssl crl2pkcs7 -nocrl -certfile www.pem -certfile "$out/ca/ca.pem" -out bundle.p7b
mv www.key api.key "$out/"
rm -f www.pem api.pem
head -c 600 www-chain.pem >truncated.pem
mkfifo named-pipe # never opened: a scan must not hang on it

cd "$out/keystore/java"
if command -v keytool >/dev/null 2>&1; then
    keytool -importcert -noprompt -alias naccs-client-ca -file "$out/ca/ca.pem" \
        -keystore truststore.jks -storetype JKS -storepass changeit >/dev/null 2>&1
else
    echo "keytool not found: the demo has no JKS file" >&2
fi

# The holders' register: two certificates that live on the holders' iPhones, which kigen
# knows only from here (one ends in 12 days, its renewal window open; one in 45 days), and
# the holder of a file on the admin server. Dates relative to today, as Excel would have them.
today=$(date +%F)
{
    echo "holder,email,terminal,device,issuer,issued,not_after,subject"
    echo "田中 太郎,tanaka@example.co.jp,NAC0001,iPhone,CN=NACCS Client CA,$(date -d "$today -5 years -1 month +12 days" +%F),,"
    echo "\"Sato, Hanako\",sato@example.co.jp,NAC0002,iPhone,CN=NACCS Client CA,,$(date -d "$today +45 days" +%F),"
    echo "伊藤 一郎,ito@example.co.jp,NAC0003,PC,,,,*CN=ito"
} >"$out/holders.csv"

echo Demo-Pass1 >"$out/naccs.pass"
chmod 600 "$out/naccs.pass" "$out/keystore/naccs-users/ito.p12.pass"
sed "s|@DEMO@|$out|g" "$src/conf/demo.yaml" >"$out/kigen.yaml"
echo "Demo keystore in $out/keystore, configuration $out/kigen.yaml"
