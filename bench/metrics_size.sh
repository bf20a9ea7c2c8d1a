#!/bin/sh
# The size of the metrics (SPEC §10, issue #15): bytes and series per certificate at the
# defaults and with every metrics: option, the render time, and `promtool check metrics` on
# both texts. A measurement, not a test: nothing here fails a build.
#
# Usage: bench/metrics_size.sh [BUILD_DIR [N]]   (build, 100000; needs -DKIGEN_BENCH or the
# snapshot_bench target: cmake --build build --target snapshot_bench)
set -eu
build=${1:-build}
n=${2:-100000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$build/bench/snapshot_bench" "$n" "$out"
for kind in default full; do
    if promtool check metrics <"$out/metrics-$kind.prom" >"$out/lint" 2>&1; then
        echo "promtool check metrics ($kind, $(wc -c <"$out/metrics-$kind.prom") bytes): clean"
    else
        echo "promtool check metrics ($kind): $(head -5 "$out/lint")"
    fi
done
