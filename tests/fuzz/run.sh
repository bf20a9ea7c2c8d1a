#!/bin/sh
# Runs the libFuzzer targets of a KIGEN_FUZZ=ON build (`make fuzz`), JOBS at a time, each for
# SECONDS, then prints per target the executions, the coverage and the corpus it reached.
# Exits 1 if any target crashed, leaked, timed out or ran out of memory, naming the input
# libFuzzer saved; put that input into tests/fuzz/regress/<target>/ with the fix.
#
#   run.sh BUILD [SECONDS [JOBS [TARGET...]]]
#
# BUILD/fixtures      test fixtures (tests/gen/make_fixtures.sh), made if missing
# BUILD/fuzz-seeds    seeds (tests/fuzz/make_seeds.sh), remade each run
# BUILD/corpus/T      the working corpus of target T, kept between runs
# BUILD/fuzz-out/T    libFuzzer's log of the run, and any crash-*, leak-*, timeout-*, oom-*
set -eu
build=${1:?usage: run.sh BUILD [SECONDS [JOBS [TARGET...]]]}
seconds=${2:-60}
jobs=${3:-2}
[ $# -gt 3 ] && shift 3 || set --
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "$build" && pwd)

# --one TARGET: one run (called through xargs below).
if [ "${FUZZ_RUN_ONE:-}" ]; then
    t=$FUZZ_RUN_ONE
    out=$build/fuzz-out/$t
    rm -rf "$out"
    mkdir -p "$out" "$build/corpus/$t"
    echo "== fuzz_$t: ${seconds}s"
    rc=0
    # CPU seconds (user + system) as well as the wall time: on a loaded machine they differ.
    (cd "$out" && /usr/bin/time -f '%U %S' -o "$out/cpu" "$build/tests/fuzz/fuzz_$t" \
        "$build/corpus/$t" "$build/fuzz-seeds/$t" "$here/regress/$t" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 \
        -print_final_stats=1 -artifact_prefix="$out/" >"$out/log" 2>&1) || rc=$?
    echo "$rc" >"$out/status"
    exit 0
fi

targets=${*:-read_any read_pem read_der read_pkcs7 read_pkcs12 read_jks config maint duration tz proto engine_load register deliveries crl ocsp}
for t in $targets; do
    if [ ! -x "$build/tests/fuzz/fuzz_$t" ]; then
        echo "run.sh: no $build/tests/fuzz/fuzz_$t: configure with -DKIGEN_FUZZ=ON" >&2
        exit 2
    fi
done
sh "$src/tests/gen/make_fixtures.sh" "$build/fixtures" >/dev/null
sh "$here/make_seeds.sh" "$build/fixtures" "$build/fuzz-seeds"

start=$(date +%s)
# shellcheck disable=SC2086
printf '%s\n' $targets | xargs -P "$jobs" -I{} env FUZZ_RUN_ONE={} sh "$0" "$build" "$seconds"
end=$(date +%s)

failed=0
printf '\n%-12s %12s %8s %8s %8s %10s %8s  %s\n' target executions cov ft corpus bytes cpu_s status
for t in $targets; do
    out=$build/fuzz-out/$t
    rc=$(cat "$out/status" 2>/dev/null || echo missing)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log" | tail -n 1)
    last=$(grep -E '^#[0-9]+.* cov: ' "$out/log" | tail -n 1 || true)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    files=$(find "$build/corpus/$t" -type f | wc -l)
    bytes=$(find "$build/corpus/$t" -type f -exec cat {} + | wc -c)
    status=ok
    if [ "$rc" != 0 ]; then
        status="FAILED (exit $rc)"
        failed=1
    fi
    cpu=$(awk '{ printf "%d", $1 + $2 }' "$out/cpu" 2>/dev/null || true)
    printf '%-12s %12s %8s %8s %8s %10s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
        "$files" "$bytes" "${cpu:-?}" "$status"
done
for t in $targets; do
    out=$build/fuzz-out/$t
    [ "$(cat "$out/status" 2>/dev/null)" = 0 ] && continue
    echo
    echo "== fuzz_$t failed: $out/log"
    grep -E 'ERROR: |runtime error|contract broken|SUMMARY' "$out/log" | head -n 5 || true
    for a in "$out"/crash-* "$out"/leak-* "$out"/timeout-* "$out"/oom-* "$out"/slow-unit-*; do
        [ -f "$a" ] && echo "input: $a"
    done
    echo "replay: $build/tests/fuzz/fuzz_$t INPUT; keep it in tests/fuzz/regress/$t/"
done
echo
echo "fuzzed $(echo $targets | wc -w) targets for ${seconds}s each, $jobs at a time, in $((end - start))s"
exit $failed
