#!/bin/sh
# Makes Java keystores with real keytool (certificates with openssl) into OUTDIR/jks/:
#
#   trusted.jks     one trusted certificate entry
#   chain.jks       one private-key entry whose chain is leaf, intermediate, root
#   multi.jks       private-key and trusted entries mixed
#   empty.jks       no entry at all (an entry added, then deleted)
#   nonascii.jks    store password and alias outside ASCII (the alias beyond the BMP)
#   *.jceks         the same as JCEKS, and seckey.jceks also holds secret-key entries
#   store.p12       a Java keystore of type PKCS12 (read by the PKCS#12 reader)
#   root.der        the root certificate alone, for keystores built by hand in tests
#
# Beside each keystore: NAME.pass (the store password, no newline) and NAME.expect, one
# line per certificate "entry sha256 not_after_unix" as the tools see it: entry is the
# alias keytool lists ("alias#N" for the Nth certificate after the first of a chain),
# sha256 and notAfter come from openssl on the PEM that `keytool -list -rfc` prints.
set -eu
out=${1:?usage: gen_jks.sh OUTDIR}
dir=$out/jks
work=$dir/.work
rm -rf "$dir"
mkdir -p "$work"

# keytool decodes its arguments with the locale's charset: the non-ASCII password and
# alias must reach it as UTF-8, as kigen reads passwords.
LC_ALL=C.UTF-8
export LC_ALL

pass=changeit
uni_pass='pässwörd🔑'
uni_alias='clé🔑'

kt() {
    keytool "$@" >"$work/kt.log" 2>&1 || {
        cat "$work/kt.log" >&2
        return 1
    }
}

# --- certificates: root CA, intermediate CA, leaf, and an unrelated CA -----------------
cat >"$work/ext.cnf" <<'EOF'
[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
[leaf]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:server.example.test
EOF
ossl_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}
ossl_key "$work/root.key"
openssl req -x509 -new -key "$work/root.key" -subj "/O=kigen test/CN=kigen JKS root" \
    -days 3650 -set_serial 1 -config "$work/ext.cnf" -extensions ca -out "$work/root.pem"
ossl_key "$work/other.key"
openssl req -x509 -new -key "$work/other.key" -subj "/O=kigen test/CN=kigen JKS other CA" \
    -days 1000 -set_serial 2 -config "$work/ext.cnf" -extensions ca -out "$work/other.pem"
ossl_key "$work/inter.key"
openssl req -new -key "$work/inter.key" -subj "/O=kigen test/CN=kigen JKS intermediate" \
    -out "$work/inter.csr"
openssl x509 -req -in "$work/inter.csr" -CA "$work/root.pem" -CAkey "$work/root.key" \
    -days 1825 -set_serial 3 -extfile "$work/ext.cnf" -extensions ca -out "$work/inter.pem" \
    2>/dev/null
ossl_key "$work/leaf.key"
openssl req -new -key "$work/leaf.key" -subj "/O=kigen test/CN=server.example.test" \
    -out "$work/leaf.csr"
openssl x509 -req -in "$work/leaf.csr" -CA "$work/inter.pem" -CAkey "$work/inter.key" \
    -days 90 -set_serial 4 -extfile "$work/ext.cnf" -extensions leaf -out "$work/leaf.pem" \
    2>/dev/null
cat "$work/inter.pem" "$work/root.pem" >"$work/cas.pem"
openssl pkcs12 -export -name server -inkey "$work/leaf.key" -in "$work/leaf.pem" \
    -certfile "$work/cas.pem" -passout "pass:$pass" -out "$work/server.p12"
openssl x509 -in "$work/root.pem" -outform DER -out "$dir/root.der"

# --- JKS -------------------------------------------------------------------------------
jks() {
    kt "$@" -storetype JKS -storepass "$pass" -noprompt
}
jks -importcert -alias root -file "$work/root.pem" -keystore "$dir/trusted.jks"

kt -importkeystore -srckeystore "$work/server.p12" -srcstoretype PKCS12 \
    -srcstorepass "$pass" -destkeystore "$dir/chain.jks" -deststoretype JKS \
    -deststorepass "$pass" -destkeypass "$pass" -noprompt

kt -importkeystore -srckeystore "$work/server.p12" -srcstoretype PKCS12 \
    -srcstorepass "$pass" -destkeystore "$dir/multi.jks" -deststoretype JKS \
    -deststorepass "$pass" -destkeypass "$pass" -noprompt
jks -importcert -alias root -file "$work/root.pem" -keystore "$dir/multi.jks"
jks -importcert -alias other-ca -file "$work/other.pem" -keystore "$dir/multi.jks"
jks -genkeypair -alias selfsigned -keyalg EC -groupname secp256r1 -validity 400 \
    -dname "CN=selfsigned.example.test, O=kigen test" -keypass "$pass" \
    -keystore "$dir/multi.jks"

jks -genkeypair -alias gone -keyalg EC -groupname secp256r1 -validity 30 -dname "CN=gone" \
    -keypass "$pass" -keystore "$dir/empty.jks"
jks -delete -alias gone -keystore "$dir/empty.jks"

kt -importcert -alias "$uni_alias" -file "$work/other.pem" -keystore "$dir/nonascii.jks" \
    -storetype JKS -storepass "$uni_pass" -noprompt

# --- JCEKS: the same entries, then secret keys -----------------------------------------
# No -destkeypass: with it keytool refuses to copy trusted entries, and still exits 0.
for name in trusted chain multi; do
    kt -importkeystore -srckeystore "$dir/$name.jks" -srcstoretype JKS -srcstorepass "$pass" \
        -destkeystore "$dir/$name.jceks" -deststoretype JCEKS -deststorepass "$pass" -noprompt
done
# Several secret keys, so that (entries are written in hash-table order) some precede a
# certificate entry and the reader must skip them to go on.
cp "$dir/multi.jceks" "$dir/seckey.jceks"
for alias in aeskey hmackey deskey; do
    case $alias in
    aeskey) alg="-keyalg AES -keysize 128" ;;
    hmackey) alg="-keyalg HmacSHA256 -keysize 256" ;;
    deskey) alg="-keyalg DESede -keysize 168" ;;
    esac
    # shellcheck disable=SC2086 # alg holds two options
    kt -genseckey -alias "$alias" $alg -keystore "$dir/seckey.jceks" -storetype JCEKS \
        -storepass "$pass" -keypass "$pass" -noprompt
done

# --- two entries under one alias ------------------------------------------------------
# keytool refuses a second entry under an alias it already holds, in any case, so these are
# spliced from keystores of one entry each: header, both entries, the alias of the second
# rewritten (same length), and the keyed digest made anew (SHA-1 of the password as UTF-16BE,
# "Mighty Aphrodite", the body). What Java makes of them is what `keytool -list` prints.
one() { # one TYPE ALIAS PEM OUT: a keystore holding one trusted entry
    kt -importcert -alias "$2" -file "$3" -keystore "$4" -storetype "$1" -storepass "$pass" \
        -noprompt
}
splice() { # splice FIRST SECOND ALIAS1 ALIAS2 OUT
    la=$(($(stat -c %s "$1") - 32))
    lb=$(($(stat -c %s "$2") - 32))
    {
        head -c 8 "$1"
        printf '\000\000\000\002'
        tail -c +13 "$1" | head -c "$la"
        tail -c +13 "$2" | head -c "$lb"
    } >"$work/body"
    printf '%s' "$3" | dd of="$work/body" bs=1 seek=18 conv=notrunc 2>/dev/null
    printf '%s' "$4" | dd of="$work/body" bs=1 seek=$((12 + la + 6)) conv=notrunc 2>/dev/null
    {
        # shellcheck disable=SC2059 # the format is the password with \000 before each char
        printf "$(printf '%s' "$pass" | sed 's/./\\000&/g')"
        printf 'Mighty Aphrodite'
        cat "$work/body"
    } | openssl dgst -sha1 -binary >"$work/digest"
    cat "$work/body" "$work/digest" >"$5"
}
for type in JKS JCEKS; do
    ext=$(echo "$type" | tr A-Z a-z)
    one "$type" dup "$work/root.pem" "$work/a.$ext"
    one "$type" dup "$work/other.pem" "$work/b.$ext"
    splice "$work/a.$ext" "$work/b.$ext" dup DUP "$dir/dupcase.$ext"
    splice "$work/a.$ext" "$work/b.$ext" DUP dup "$dir/duplower.$ext"
    splice "$work/a.$ext" "$work/b.$ext" dup dup "$dir/dupsame.$ext"
done
one JKS server "$work/other.pem" "$work/c.jks"
splice "$dir/chain.jks" "$work/c.jks" server SERVER "$dir/dupchain.jks"
keytool -list -keystore "$dir/dupsame.jks" -storepass "$pass" | grep -q '1 entry'

# --- PKCS12-type Java keystore ---------------------------------------------------------
kt -importkeystore -srckeystore "$dir/multi.jks" -srcstoretype JKS -srcstorepass "$pass" \
    -destkeystore "$dir/store.p12" -deststoretype PKCS12 -deststorepass "$pass" -noprompt

# --- expected values, from keytool's listing and openssl ------------------------------
# Splits `keytool -list -rfc` into one PEM file per certificate, with its entry name.
expect() {
    ks=$1
    pw=$2
    rm -rf "$work/split"
    mkdir "$work/split"
    kt -list -rfc -keystore "$dir/$ks" -storepass "$pw"
    awk -v d="$work/split" '
        /^Alias name: / { alias = substr($0, 13); idx = 0; next }
        /^Certificate\[[0-9]+\]:$/ { idx = substr($0, 13) - 1; next }
        /^-----BEGIN CERTIFICATE-----$/ {
            n++
            f = sprintf("%s/%04d.pem", d, n)
            print (idx == 0 ? alias : alias "#" idx) > (f ".entry")
            close(f ".entry")
            inpem = 1
        }
        inpem { print > f }
        /^-----END CERTIFICATE-----$/ { inpem = 0; close(f) }
    ' "$work/kt.log"
    : >"$dir/$ks.expect"
    for pem in "$work"/split/*.pem; do
        [ -e "$pem" ] || continue
        entry=$(cat "$pem.entry")
        fp=$(openssl x509 -in "$pem" -noout -fingerprint -sha256 | sed 's/^.*=//; s/://g' |
            tr 'A-F' 'a-f')
        end=$(openssl x509 -in "$pem" -noout -enddate | sed 's/^notAfter=//')
        printf '%s %s %s\n' "$entry" "$fp" "$(date -u -d "$end" +%s)" >>"$dir/$ks.expect"
    done
    printf '%s' "$pw" >"$dir/$ks.pass"
}
for ks in trusted.jks chain.jks multi.jks empty.jks trusted.jceks chain.jceks multi.jceks \
    seckey.jceks store.p12 dupcase.jks duplower.jks dupsame.jks dupchain.jks dupcase.jceks \
    duplower.jceks dupsame.jceks; do
    expect "$ks" "$pass"
done
expect nonascii.jks "$uni_pass"

# keytool exits 0 when it skips entries: check that every copy holds every certificate.
for copy in trusted.jceks:trusted.jks chain.jceks:chain.jks multi.jceks:multi.jks \
    seckey.jceks:multi.jks store.p12:multi.jks; do
    if ! cmp -s "$dir/${copy%%:*}.expect" "$dir/${copy#*:}.expect"; then
        echo "gen_jks.sh: ${copy%%:*} does not hold the entries of ${copy#*:}" >&2
        exit 1
    fi
done

rm -rf "$work"
