#!/bin/sh
# Makes the seed corpora of the fuzz targets into OUTDIR/<target>/, from the fixtures that
# tests/gen/make_fixtures.sh made in FIXTURES (real certificates, PKCS#12 files and Java
# keystores by openssl and keytool), the example configurations in conf/, the zones in
# /usr/share/zoneinfo, hand-written socket requests, durations, schedules and state files, and
# the CRLs and OCSP answers of a revoking CA made here. Deterministic for given fixtures but for
# those (the CA's key is new each time); OUTDIR is replaced as a whole.
#
#   make_seeds.sh FIXTURES OUTDIR
set -eu
fixtures=${1:?usage: make_seeds.sh FIXTURES OUTDIR}
out=${2:?usage: make_seeds.sh FIXTURES OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
zoneinfo=/usr/share/zoneinfo

for d in certs jks; do
    if [ ! -d "$fixtures/$d" ]; then
        echo "make_seeds.sh: no $fixtures/$d: run tests/gen/make_fixtures.sh $fixtures" >&2
        exit 1
    fi
done

tmp=$out.tmp
rm -rf "$tmp"
mkdir -p "$tmp"
for t in read_any read_pem read_der read_pkcs7 read_pkcs12 read_jks config maint duration tz \
    proto engine_load register deliveries crl ocsp; do
    mkdir "$tmp/$t"
done

# seed TARGET FILE...: copies each regular file under 64 KiB, named DIR-NAME after its source.
seed() {
    target=$1
    shift
    for f in "$@"; do
        [ -f "$f" ] || continue
        [ "$(wc -c <"$f")" -le 65536 ] || continue
        cp "$f" "$tmp/$target/$(basename "$(dirname "$f")")-$(basename "$f")"
    done
}

# line TARGET NAME TEXT: one seed holding TEXT as printf reads it (\n, \ooo escapes).
line() {
    # shellcheck disable=SC2059
    printf "$3" >"$tmp/$1/$2"
}

# --- readers ---------------------------------------------------------------------------
c=$fixtures/certs
j=$fixtures/jks
p=$fixtures/probe
seed read_any "$c"/* "$j"/* "$p"/*
seed read_pem "$c"/*.pem "$p"/*.pem "$c/chain.p7b.pem"
seed read_der "$c"/*.der "$j"/*.der
for f in ok expired ca; do
    openssl x509 -in "$c/$f.pem" -outform DER -out "$tmp/read_der/$f.der"
done
for f in good unknown-ca; do
    [ -f "$p/$f.pem" ] && openssl x509 -in "$p/$f.pem" -outform DER -out "$tmp/read_der/probe-$f.der"
done
seed read_pkcs7 "$c/chain.p7b" "$c/chain.p7b.pem"
openssl crl2pkcs7 -nocrl -outform DER -out "$tmp/read_pkcs7/empty.p7b"
openssl crl2pkcs7 -nocrl -certfile "$c/expired.pem" -out "$tmp/read_pkcs7/one.p7b.pem"
seed read_pkcs12 "$c"/*.p12 "$j"/*.p12
seed read_jks "$j"/*.jks "$j"/*.jceks

# --- the configuration -------------------------------------------------------------------
seed config "$src"/conf/*.yaml
cat >"$tmp/config/minimal.yaml" <<'EOF'
keystores:
  - path: /srv/certs
EOF
cat >"$tmp/config/full.yaml" <<'EOF'
socket: /run/kigen/kigen.sock
state_dir: /var/lib/kigen
scan_interval: 1h
timezone: Asia/Tokyo
metrics_listen: "127.0.0.1:9793"
policy:
  renew_before: 28d
  critical_before: 7d
  notify_before: [60d, 28d, 14d, 7d, 3d, 1d]
rules:
  - match: { issuer: "*NACCS Client CA*" }
    renew_before: 28d
    renew_url: "https://cert.nac.naccs.jp/NACCSClientCA/pages/renew/index-iOS.jsp?s=Sitel&lan=ja"
    reissue_note: "re-issue takes at least one business day"
  - match: { keystore: web, subject: "CN=*.example.test*" }
    critical_before: 14d
    notify_before: []
keystores:
  - name: naccs-users
    path: /srv/naccs
    recursive: true
    include: ["*.p12", "*.pfx"]
    exclude: ["*.bak"]
    passwords:
      - file: /etc/kigen/naccs.pass
      - credential: naccs-pass
      - env: KIGEN_NACCS_PASS
    password_sidecar: true
    follow_symlinks: false
    max_file_size: 16MiB
    labels: { team: customs, site: kobe }
  - name: web
    path: /etc/ssl/private
    max_file_size: 1024
probes:
  interval: 5m
  timeout: 10s
  failures_before_alert: 3
  proxy: "http://proxy.example.test:3128"
  targets:
    - { name: webnaccs, host: web-prod.nac.naccs.jp, port: 443, tls: true }
    - { name: naccs-cert, host: cert.nac.naccs.jp, port: 443, tls: true, ca_file: /etc/ssl/x.pem }
    - { host: "[2001:db8::1]", port: 8443, tls: false, interval: 1m, timeout: 2s }
maintenance:
  - name: naccs-monthly
    targets: [naccs-cert]
    every: third tuesday
    at: "22:00"
    duration: 10h
    timezone: Asia/Tokyo
  - name: weekly
    targets: [webnaccs, naccs-cert]
    every: weekly sun
    at: "2:30"
    duration: 90m
    timezone: Europe/Berlin
  - name: nightly
    targets: []
    every: daily
    at: "23:59"
    duration: 1s
alerts:
  journald: true
  syslog: true
  exec: "/usr/local/bin/notify --all"
  textfile: /var/lib/node_exporter/kigen.prom
  reminder_every: 1d
EOF
cat >"$tmp/config/errors.yaml" <<'EOF'
keystores:
  - name: "probe:x"
    path: ~
    labels: { __x: 1, Team: a, team: b }
probes: { targets: [] }
maintenance:
  - { name: m, targets: [a], every: last friday, at: "24:00", duration: 400d, timezone: "../etc" }
EOF
printf '%s\n' '{probes: {targets: []}, maintenance: [], alerts: {syslog: false}}' \
    >"$tmp/config/flow.yaml"
printf '' >"$tmp/config/empty.yaml"

# --- maintenance schedules: every, at, duration, timezone, instant -------------------------
line maint naccs 'third tuesday\n22:00\n10h\nAsia/Tokyo\n1795521600\n'
line maint berlin-gap 'last sunday\n02:30\n1h\nEurope/Berlin\n1774746000\n'
line maint daily 'daily\n0:00\n1s\nUTC\n0\n'
line maint apia 'weekly fri\n23:59\n366d\nPacific/Apia\n1325203200\n'
line maint long 'first monday\n12:00\n400d\nUTC\n'
line maint lordhowe 'second wed\n01:00\n2d\nAustralia/Lord_Howe\n-62135596800\n'
line maint edge 'fourth sat\n23:30\n5h\nright/UTC\n253402300799\n'
line maint last-day 'last Saturday\n23:59\n36h\nAmerica/Sao_Paulo\n9007199254740992\n'

# --- durations and sizes -------------------------------------------------------------------
for d in 28d 0s 1w 36500d 9223372036854775807s 9223372036854775808s 99999999999999999999d \
    16MiB 1GiB 17179869183GiB 0B 1024 d 1 1.5h -1d 28D; do
    printf '%s' "$d" >"$tmp/duration/$d"
done

# --- zones: 16 bytes of query (fuzz_tz.c) and a TZif file --------------------------------
q1='\000\000\000\000\153\005\174\100\007\352\013\030\005\050\112\002'
q2='\000\000\000\000\151\310\171\220\007\352\003\035\000\226\200\003'
q3='\000\000\000\000\116\374\126\100\007\333\014\036\002\320\000\000'
q4='\377\377\377\361\210\156\011\000\000\001\001\001\000\000\025\006'
q5='\000\000\000\072\377\364\101\177\047\017\014\037\005\237\172\005'
n=0
for z in UTC Asia/Tokyo Europe/Berlin America/New_York Australia/Lord_Howe Pacific/Apia \
    Europe/Dublin America/Sao_Paulo Africa/Casablanca Antarctica/Troll right/UTC; do
    [ -f "$zoneinfo/$z" ] || continue
    n=$((n + 1))
    case $((n % 5)) in
    0) q=$q1 ;;
    1) q=$q2 ;;
    2) q=$q3 ;;
    3) q=$q4 ;;
    *) q=$q5 ;;
    esac
    # shellcheck disable=SC2059
    { printf "$q"; cat "$zoneinfo/$z"; } >"$tmp/tz/$(echo "$z" | tr / -)"
done
# shellcheck disable=SC2059
{ printf "$q1"; cat "$zoneinfo/Asia/Tokyo"; } >"$tmp/tz/tokyo-now"

# --- socket requests -----------------------------------------------------------------------
s1=1111111111111111111111111111111111111111111111111111111111111111
s4=4444444444444444444444444444444444444444444444444444444444444444
line proto status '{"cmd":"status"}'
line proto list '{"cmd":"list"}'
line proto list-filter '{"cmd":"list","state":"renewal_open","within":"30d","keystore":"naccs"}'
line proto list-bad '{"cmd":"list","state":"soon","within":"30x","keystore":"nope"}'
line proto list-within-max '{"cmd":"list","within":"9223372036854775807s"}'
line proto show "{\"cmd\":\"show\",\"sha256\":\"$s1\"}"
line proto show-upper "{\"cmd\":\"show\",\"sha256\":\"$(echo $s4 | tr 4 A)\"} "
line proto show-expired "{\"cmd\":\"show\",\"sha256\":\"$s4\"}"
line proto probes '{"cmd":"probes"}'
line proto rescan-priv '{"cmd":"rescan"} '
line proto rescan '{"cmd":"rescan"}'
line proto reload-priv ' {"cmd":"reload"}'
line proto metrics '{"cmd":"metrics"}'
line proto unknown '{"cmd":"bogus","x":[1,{"y":null}]}'
line proto not-object '["status"]'
line proto dup '{"cmd":"status","cmd":"list"}'
line proto field '{"cmd":"status","state":"ok"}'
line proto broken '{"cmd":"sta'

# --- state files (src/engine.c: JSON lines, "end" counts the records) ---------------------
s3=3333333333333333333333333333333333333333333333333333333333333333
line engine_load empty '{"kigen_state":1}\n{"end":0}\n'
line engine_load full "{\"kigen_state\":1}
{\"cert\":\"$s4\",\"subject\":\"CN=takahashi,O=Example Trading,C=JP\",\"issuer\":\"CN=NACCS Client CA,O=Test NACCS,C=JP\",\"not_after\":1793491200,\"locations\":\"naccs\\\\t/srv/naccs/takahashi.p12\\\\n\",\"sent\":{\"cert.expired\":1795435200,\"cert.threshold\":1790000000},\"threshold_step\":86400}
{\"cert\":\"$s3\",\"subject\":\"CN=suzuki,O=Example Trading,C=JP\",\"issuer\":\"CN=NACCS Client CA,O=Test NACCS,C=JP\",\"not_after\":1797249600,\"locations\":\"naccs\\\\t/srv/naccs/suzuki.p12\\\\n\",\"sent\":{\"cert.renewal_open\":1795000000},\"threshold_step\":2419200}
{\"cert\":\"9999999999999999999999999999999999999999999999999999999999999999\",\"subject\":\"CN=gone\",\"issuer\":\"CN=x\",\"not_after\":1700000000,\"locations\":\"web\\\\t/srv/web/gone.pem\\\\n\",\"sent\":{\"cert.critical\":1699000000},\"threshold_step\":0}
{\"error\":\"naccs\\\\n/srv/naccs/broken.p12\",\"code\":\"wrong_password\",\"sent\":1795000000}
{\"error\":\"naccs\\\\n/srv/naccs/fixed.p12\",\"code\":\"malformed\",\"sent\":1795000000}
{\"outbox\":7,\"event\":\"cert.expired\",\"priority\":3,\"message\":\"certificate CN=takahashi expired\",\"fields\":[[\"KIGEN_EVENT\",\"cert.expired\"],[\"KIGEN_SHA256\",\"$s4\"]]}
{\"outbox\":8,\"event\":\"scan.error\",\"priority\":4,\"message\":\"Cannot read\",\"fields\":[]}
{\"end\":7}
"
line engine_load nosubject "{\"kigen_state\":1}
{\"cert\":\"$s1\",\"not_after\":1864598400,\"sent\":{},\"threshold_step\":0}
{\"cert\":\"8888888888888888888888888888888888888888888888888888888888888888\",\"not_after\":0,\"sent\":{\"cert.expired\":-9223372036854775807},\"threshold_step\":-1}
{\"end\":2}
"
line engine_load probe '{"kigen_state":1}\n{"probe_down":"naccs-cert","sent":1795000000}\n{"end":1}\n'
line engine_load truncated '{"kigen_state":1}\n{"cert":"ab","not_after":1,"sent":{},"threshold_step":0}\n'

# --- CRLs and OCSP answers (SPEC §13), from the revoking CA of tests/gen/revocation_ca.sh ----
# The ports only go into URLs in the certificates; nothing listens or is asked here.
rev=$tmp/revocation-ca
sh "$src/tests/gen/revocation_ca.sh" "$rev" 1 2 3
for f in "$rev"/crl/*; do
    cp "$f" "$tmp/crl/$(basename "$f")"
done
for leaf in ocsp-good ocsp-revoked revoked; do
    openssl ocsp -issuer "$rev/ca/ca.pem" -cert "$rev/certs/$leaf.pem" -no_nonce \
        -reqout "$rev/$leaf.req" 2>/dev/null
    openssl ocsp -index "$rev/ca/index.txt" -rsigner "$rev/ca/ca.pem" -rkey "$rev/ca/ca.key" \
        -CA "$rev/ca/ca.pem" -reqin "$rev/$leaf.req" -respout "$tmp/ocsp/$leaf.der" -ndays 1 \
        >/dev/null 2>&1
done
printf '\060\003\012\001\001' >"$tmp/ocsp/malformed-request-status.der"
rm -rf "$rev"

rm -rf "$out"
mv "$tmp" "$out"
echo "fuzz seeds in $out: $(find "$out" -type f | wc -l) files"
