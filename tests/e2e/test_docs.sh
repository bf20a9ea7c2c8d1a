#!/bin/bash
# The shipped documentation and examples: the man pages format without a warning and cover
# every option, command and configuration key the code has; conf/kigen.yaml and the example
# in kigen.yaml(5) pass `kigend --check-config`; the Prometheus rules pass `promtool check
# rules`, fire as their unit tests say (`promtool test rules`) and use only metrics kigend
# exports.
#
# Needs groff (package groff-base) and promtool (package prometheus). A missing tool is a
# failure.
set -u

SRC=${KIGEN_SRC:?KIGEN_SRC is not set}
KIGEND=${KIGEND:?KIGEND is not set}
KIGENCTL=${KIGENCTL:?KIGENCTL is not set}

fails=0
cases=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
pass() {
    echo "ok: $*"
}
case_() {
    cases=$((cases + 1))
}

for tool in groff:groff-base promtool:prometheus; do
    if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
        echo "FAIL: ${tool%%:*} is not installed (apt-get install ${tool#*:})"
        exit 1
    fi
done

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export LC_ALL=C.UTF-8

# 1. Each man page formats without a warning, for print and for an 80-column terminal (as
# `man --warnings` does), and its .TH names it.
for page in kigend.8 kigenctl.1 kigen.yaml.5; do
    case_
    f=$SRC/man/$page
    if [ ! -f "$f" ]; then
        fail "man/$page is missing"
        continue
    fi
    out=$(groff -man -ww -z "$f" 2>&1; groff -man -Tutf8 -rLL=78n -ww -z "$f" 2>&1)
    name=${page%.*}
    sect=${page##*.}
    upper=$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
    if [ -n "$out" ]; then
        fail "groff warns about man/$page:"
        printf '%s\n' "$out" | sed 's/^/    /'
    elif ! grep -q "^\.TH $upper $sect " "$f"; then
        fail "man/$page: no '.TH $upper $sect' line"
    else
        pass "man/$page formats cleanly"
    fi
done

# The text a man page shows, for the checks below: \- becomes -, fonts go.
text() {
    sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$SRC/man/$1"
}

# 2. kigend(8) has every option of `kigend --help`, kigenctl(1) every option and command of
# `kigenctl --help`.
case_
missing=""
for opt in $("$KIGEND" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    text kigend.8 | grep -q -- "$opt" || missing="$missing kigend.8:$opt"
done
for opt in $("$KIGENCTL" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    text kigenctl.1 | grep -q -- "$opt" || missing="$missing kigenctl.1:$opt"
done
commands=$("$KIGENCTL" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
if [ -z "$commands" ]; then
    fail "kigenctl --help lists no commands"
fi
for cmd in $commands; do
    grep -q "^\.B[IR]* $cmd\b" "$SRC/man/kigenctl.1" || missing="$missing kigenctl.1:$cmd"
done
if [ -n "$missing" ]; then
    fail "not documented:$missing"
else
    pass "the man pages cover every option and command ($(echo $commands))"
fi

# 3. kigen.yaml(5) and conf/kigen.yaml have every key the parser knows.
case_
keys=$(grep -o 'key_is(k, "[a-z_]*")' "$SRC/src/config.c" | sed 's/.*"\(.*\)".*/\1/' | sort -u)
missing=""
for key in $keys file credential env; do
    grep -q "^\.B[IR]* $key:" "$SRC/man/kigen.yaml.5" ||
        grep -q "^\.B[IR]* .*\b$key\b" "$SRC/man/kigen.yaml.5" || missing="$missing kigen.yaml.5:$key"
    grep -q "\b$key:" "$SRC/conf/kigen.yaml" || missing="$missing conf/kigen.yaml:$key"
done
if [ $(printf '%s\n' $keys | wc -l) -lt 40 ]; then
    fail "found only $(printf '%s\n' $keys | wc -l) keys in src/config.c; did its style change?"
elif [ -n "$missing" ]; then
    fail "keys not documented:$missing"
else
    pass "kigen.yaml(5) and conf/kigen.yaml show all $(printf '%s\n' $keys | wc -l) keys"
fi

# 4. The shipped configuration is valid as it stands, keystore directory absent or not,
# with the NACCS probes and one keystore.
case_
out=$("$KIGEND" --check-config "$SRC/conf/kigen.yaml" 2>&1)
rc=$?
if [ $rc -ne 0 ]; then
    fail "kigend --check-config conf/kigen.yaml exits $rc: $out"
elif ! printf '%s' "$out" | grep -q '(1 keystores, 2 probe targets)'; then
    fail "conf/kigen.yaml is not the NACCS setup (1 keystore, 2 probe targets): $out"
else
    pass "conf/kigen.yaml: $out"
fi

# 5. So is the example of kigen.yaml(5).
case_
sed -n '/^\.SH EXAMPLE/,/^\.SH/p' "$SRC/man/kigen.yaml.5" | sed -n '/^\.EX/,/^\.EE/p' |
    sed -e '/^\.E[XE]/d' -e 's/\\-/-/g' >"$T/example.yaml"
out=$("$KIGEND" --check-config "$T/example.yaml" 2>&1)
rc=$?
if [ ! -s "$T/example.yaml" ]; then
    fail "kigen.yaml(5) has no EXAMPLE with an .EX block"
elif [ $rc -ne 0 ]; then
    fail "the example of kigen.yaml(5) is not valid (exit $rc): $out"
else
    pass "the example of kigen.yaml(5): $out"
fi

# 6. The Prometheus rules load, and fire (and stay quiet) as their unit tests say.
case_
out=$(promtool check rules "$SRC/conf/kigen.rules.yml" 2>&1)
rc=$?
if [ $rc -ne 0 ]; then
    fail "promtool check rules (exit $rc):"
    printf '%s\n' "$out" | sed 's/^/    /'
else
    pass "promtool check rules: $(printf '%s' "$out" | grep -o '[0-9]* rules found')"
fi
case_
out=$(cd "$SRC/conf" && promtool test rules kigen.rules.test.yml 2>&1)
rc=$?
if [ $rc -ne 0 ]; then
    fail "promtool test rules (exit $rc):"
    printf '%s\n' "$out" | sed 's/^/    /'
else
    pass "promtool test rules: every rule fires as expected"
fi

# 7. Every kigen_* metric the rules use is one kigend writes, and every alert is tested.
case_
missing=""
for m in $(grep -o 'kigen_[a-z_]*' "$SRC/conf/kigen.rules.yml" | sort -u); do
    grep -q "\"$m\"" "$SRC/src/metrics.c" || missing="$missing $m"
done
untested=""
for a in $(sed -n 's/^ *- alert: *//p' "$SRC/conf/kigen.rules.yml"); do
    grep -q "alertname: $a\$" "$SRC/conf/kigen.rules.test.yml" || untested="$untested $a"
done
if [ -n "$missing" ]; then
    fail "the rules use metrics src/metrics.c does not write:$missing"
elif [ -n "$untested" ]; then
    fail "alerts without a unit test in conf/kigen.rules.test.yml:$untested"
else
    pass "the rules use only kigend's metrics, and every alert is tested"
fi

echo "test_docs: $((cases - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
