#!/bin/sh
# Makes every test input with real openssl and keytool: runs each tests/gen/gen_*.sh OUT.
# Idempotent: a generator that already finished (OUT/.done-NAME) is not run again.
set -eu
out=${1:?usage: make_fixtures.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd) # the generators change directory
for gen in "$here"/gen_*.sh; do
    name=$(basename "$gen" .sh)
    stamp="$out/.done-$name"
    if [ -f "$stamp" ] && [ "$stamp" -nt "$gen" ]; then
        continue
    fi
    echo "== $name"
    sh "$gen" "$out"
    touch "$stamp"
done
