#!/bin/sh
# Benchmarks of issue #3 (not tests: nothing here fails a build).
#
#   1. 10,000 PEM/DER certificate files + 500 PKCS#12 files:
#      kigend --once, next to refparse (OpenSSL alone on two threads, one OSSL_LIB_CTX
#      each: the practical limit) and the `openssl x509 -enddate` loop admins use today.
#   2. Peak RSS of kigend --once over 100,000 certificates.
#
# Usage: bench/run.sh [BUILD_DIR]   (make bench). Corpora go to bench/out/ (git-ignored).
set -eu
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
out=$here/out
mkdir -p "$out"
kigend=$build/kigend
mk=$build/bench/mkcorpus
ref=$build/bench/refparse

corpus() { # DIR N_CERTS N_P12
    [ -f "$1/.done" ] && return 0
    rm -rf "$1"
    "$mk" "$1" "$2" "$3"
    touch "$1/.done"
}
config() { # DIR
    printf 'bench-pass\n' >"$out/bench.pass"
    cat >"$1.yaml" <<YAML
keystores:
  - name: bench
    path: $1
    password_sidecar: false
    passwords: [ { file: $out/bench.pass } ]
probes: { targets: [] }
alerts: { journald: false }
YAML
}
measure() { # RUNS LABEL COMMAND...: best wall time of RUNS runs and the peak RSS
    runs=$1
    label=$2
    shift 2
    best=""
    for i in $(seq "$runs"); do
        /usr/bin/time -f '%e %M' -o "$out/time.txt" "$@" >/dev/null 2>"$out/stderr.txt" || true
        t=$(tail -n 1 "$out/time.txt" | cut -d' ' -f1)
        rss=$(tail -n 1 "$out/time.txt" | cut -d' ' -f2)
        if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
    done
    printf '| %-46s | %8s s | %8s MiB |\n' "$label" "$best" "$((rss / 1024))"
}

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
corpus "$out/c10k" 10000 500
config "$out/c10k"
echo
echo "| 10,000 PEM/DER + 500 PKCS#12 files             |     wall   |   peak RSS   |"
echo "|------------------------------------------------|------------|--------------|"
measure 3 "kigend --once --format json" "$kigend" --config "$out/c10k.yaml" --once --format json
files=$(find "$out/c10k" -type f ! -name .done | sort)
# shellcheck disable=SC2086
measure 3 "refparse (OpenSSL only, 2 threads)" "$ref" bench-pass $files
cat >"$out/loop.sh" <<'LOOP'
for f in "$1"/*.pem; do openssl x509 -enddate -noout -in "$f"; done
for f in "$1"/*.der; do openssl x509 -inform DER -enddate -noout -in "$f"; done
for f in "$1"/*.p12; do
    openssl pkcs12 -in "$f" -nokeys -passin pass:bench-pass | openssl x509 -enddate -noout
done
LOOP
measure 1 "openssl x509 -enddate shell loop" sh "$out/loop.sh" "$out/c10k"

corpus "$out/c100k" 100000 0
config "$out/c100k"
echo
echo "| 100,000 certificate files                      |     wall   |   peak RSS   |"
echo "|------------------------------------------------|------------|--------------|"
measure 3 "kigend --once --format json" "$kigend" --config "$out/c100k.yaml" --once --format json
