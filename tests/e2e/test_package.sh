#!/bin/bash
# The Debian package (`make deb`): cpack builds it from this build tree into a directory of
# its own (so that nothing in the build tree changes and two builds can run this at once),
# then the test reads it back with dpkg-deb: its control fields and shared-library Depends,
# every file at its place and equal to its source, the unit's ExecStart= binary, the
# conffile, and the maintainer scripts, run for real against the unpacked tree
# (DPKG_ROOT), as dpkg --root would: install, upgrade, remove, purge.
#
# Needs cpack (cmake), dpkg-deb and dpkg-shlibdeps (dpkg-dev), readelf (binutils), gzip,
# systemd-sysusers, systemd-tmpfiles and journalctl (systemd), deb-systemd-helper
# (init-system-helpers), and root (the tree's files are given to user kigen). A missing
# tool or privilege is a failure.
set -u

SRC=${KIGEN_SRC:?KIGEN_SRC is not set}
BUILD=${KIGEN_BUILD:?KIGEN_BUILD is not set}

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

for tool in cpack:cmake dpkg-deb:dpkg dpkg-shlibdeps:dpkg-dev dpkg-architecture:dpkg-dev readelf:binutils gzip:gzip \
    systemd-sysusers:systemd systemd-tmpfiles:systemd journalctl:systemd \
    deb-systemd-helper:init-system-helpers; do
    if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
        echo "FAIL: ${tool%%:*} is not installed (apt-get install ${tool#*:})"
        exit 1
    fi
done
if [ "$(id -u)" -ne 0 ]; then
    echo "FAIL: must run as root: the maintainer scripts give files to user kigen"
    exit 1
fi
if [ ! -f "$BUILD/CPackConfig.cmake" ]; then
    echo "FAIL: $BUILD/CPackConfig.cmake is missing: CMakeLists.txt does not include(CPack)"
    exit 1
fi

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
unitdir=$(sed -n 's/^KIGEN_SYSTEMD_UNITDIR:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
unitdir=${unitdir:-/lib/systemd/system}

# 1. cpack makes one .deb, in our directory only. With the build tree's own generator
# (Unix Makefiles) cpack would first run `make preinstall`, a build, in a tree that other
# tests are using; the install scripts are the same whatever the generator, and naming one
# without a preinstall target (Ninja) makes cpack only copy what the build made.
case_
if ! (cd "$T" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$T/out" \
    -D CPACK_CMAKE_GENERATOR=Ninja) >"$T/cpack.log" 2>&1; then
    fail "cpack -G DEB failed:"
    tail -20 "$T/cpack.log" | sed 's/^/    /'
    echo "test_package: 0 passed, $fails failed"
    exit 1
fi
debs=$(find "$T/out" -maxdepth 1 -name 'kigen_*.deb')
if [ "$(printf '%s\n' "$debs" | grep -c .)" -ne 1 ]; then
    fail "expected one kigen_*.deb, got: $debs"
    exit 1
fi
DEB=$debs
pass "cpack made $(basename "$DEB")"

# 2. Control fields, and Depends: the libraries SPEC §2 names, and the package of every
# library the binaries need (dpkg-shlibdeps's result, checked independently).
case_
field() {
    dpkg-deb --field "$DEB" "$1"
}
depends=$(field Depends)
bad=""
[ "$(field Package)" = kigen ] || bad="$bad Package=$(field Package)"
[ "$(field Section)" = admin ] || bad="$bad Section=$(field Section)"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || bad="$bad Architecture"
[ -n "$(field Maintainer)" ] || bad="$bad Maintainer"
[ -n "$(field Description)" ] || bad="$bad Description"
want="libc6 libssl3 libuv1 libyaml-0-2 libsystemd0 libjansson4"
mkdir -p "$T/root"
dpkg-deb -x "$DEB" "$T/root"
R=$T/root
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for bin in "$R/usr/sbin/kigend" "$R/usr/bin/kigenctl"; do
    [ -f "$bin" ] || continue
    for so in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p'); do
        pkg=$(dpkg -S "*/$multiarch/$so" 2>/dev/null | grep -v '^diversion' | head -1 | cut -d: -f1)
        [ -n "$pkg" ] && want="$want $pkg"
    done
done
want=$(printf '%s\n' $want | sort -u)
for pkg in $want; do
    printf '%s\n' "$depends" | tr ',' '\n' | grep -q "^ *$pkg\( \|$\)" || bad="$bad Depends:$pkg"
done
if [ -n "$bad" ]; then
    fail "control fields:$bad (Depends: $depends)"
else
    pass "Depends: $depends"
fi
if ! printf '%s\n' $want | grep -q '^libmicrohttpd12$'; then
    echo "note: the binaries do not link libmicrohttpd (yet), so Depends need not name it"
fi

# 3. Every file at its place, equal to its source; man pages compressed; nothing else.
case_
bad=""
same() { # FILE-IN-PACKAGE SOURCE
    if [ ! -f "$R$1" ]; then
        bad="$bad missing:$1"
    elif ! cmp -s "$R$1" "$SRC/$2"; then
        bad="$bad differs:$1"
    fi
}
same "$unitdir/kigend.service" units/kigend.service
same "$unitdir/kigend.socket" units/kigend.socket
same /usr/lib/sysusers.d/kigen.conf units/kigen.sysusers
same /usr/lib/tmpfiles.d/kigen.conf units/kigen.tmpfiles
same /usr/lib/systemd/catalog/kigen.catalog units/kigen.catalog
same /etc/kigen/kigen.yaml conf/kigen.yaml
same /usr/share/doc/kigen/README.md README.md
same /usr/share/doc/kigen/README.ja.md README.ja.md
# The Japanese catalogue as msgfmt built it (src/i18n.c reads it from /usr/share/locale).
mo=/usr/share/locale/ja/LC_MESSAGES/kigen.mo
if [ ! -f "$R$mo" ]; then
    bad="$bad missing:$mo"
elif ! cmp -s "$R$mo" "$BUILD/locale/ja/LC_MESSAGES/kigen.mo"; then
    bad="$bad differs:$mo"
fi
same /usr/share/doc/kigen/examples/kigen.rules.yml conf/kigen.rules.yml
same /usr/share/doc/kigen/examples/kigen.rules.test.yml conf/kigen.rules.test.yml
same /usr/share/doc/kigen/examples/kigen.json conf/grafana/kigen.json
for page in man1/kigenctl.1 man5/kigen.yaml.5 man8/kigend.8; do
    gz=$R/usr/share/man/$page.gz
    if [ ! -f "$gz" ] || ! gzip -t "$gz" 2>/dev/null; then
        bad="$bad not-gzipped:/usr/share/man/$page.gz"
    elif ! gzip -dc "$gz" | cmp -s - "$SRC/man/${page#*/}"; then
        bad="$bad differs:/usr/share/man/$page.gz"
    fi
done
for bin in /usr/sbin/kigend /usr/bin/kigenctl; do
    [ -x "$R$bin" ] || bad="$bad not-executable:$bin"
done
extra=$(cd "$R" && find . -type f | sed 's/^\.//' | grep -v -x -F \
    -e "$unitdir/kigend.service" -e "$unitdir/kigend.socket" \
    -e /usr/lib/sysusers.d/kigen.conf -e /usr/lib/tmpfiles.d/kigen.conf \
    -e /usr/lib/systemd/catalog/kigen.catalog -e /etc/kigen/kigen.yaml \
    -e /usr/share/doc/kigen/README.md -e /usr/share/doc/kigen/README.ja.md -e "$mo" \
    -e /usr/share/doc/kigen/examples/kigen.rules.yml \
    -e /usr/share/doc/kigen/examples/kigen.rules.test.yml \
    -e /usr/share/doc/kigen/examples/kigen.json \
    -e /usr/share/man/man1/kigenctl.1.gz -e /usr/share/man/man5/kigen.yaml.5.gz \
    -e /usr/share/man/man8/kigend.8.gz -e /usr/sbin/kigend -e /usr/bin/kigenctl)
[ -z "$extra" ] || bad="$bad unexpected:$(echo $extra)"
if [ -n "$bad" ]; then
    fail "package contents:$bad"
else
    pass "every file at its place ($unitdir, /usr/lib, /etc/kigen, /usr/share)"
fi

# 4. The units run what the package installs, and the installed binary works.
case_
bad=""
for unit in "$R$unitdir/kigend.service"; do
    for key in ExecStart ExecReload; do
        cmd=$(sed -n "s/^$key=//p" "$unit" | awk '{ print $1 }')
        if [ -z "$cmd" ]; then
            bad="$bad no-$key"
        elif [ ! -x "$R$cmd" ] && [ ! -x "$cmd" ]; then
            bad="$bad $key=$cmd-not-installed"
        fi
    done
done
conf=$(sed -n 's/^ExecStart=.*--config \([^ ]*\).*/\1/p' "$R$unitdir/kigend.service")
[ -f "$R$conf" ] || bad="$bad --config-$conf-not-in-package"
out=$("$R/usr/sbin/kigend" --check-config "$R/etc/kigen/kigen.yaml" 2>&1) || bad="$bad check-config:$out"
"$R/usr/bin/kigenctl" --version >/dev/null 2>&1 || bad="$bad kigenctl--version"
if [ -n "$bad" ]; then
    fail "units and binaries:$bad"
else
    pass "ExecStart= runs the packaged kigend with the packaged $conf"
fi

# 5. The conffile, and the maintainer scripts, executable and valid sh.
case_
bad=""
dpkg-deb -e "$DEB" "$T/control"
if [ "$(cat "$T/control/conffiles" 2>/dev/null)" != /etc/kigen/kigen.yaml ]; then
    bad="$bad conffiles=[$(cat "$T/control/conffiles" 2>/dev/null)]"
fi
for f in $(cd "$R" && find ./etc -type f | sed 's/^\.//'); do
    grep -qxF "$f" "$T/control/conffiles" 2>/dev/null || bad="$bad not-a-conffile:$f"
done
for script in postinst prerm postrm; do
    s=$T/control/$script
    if [ ! -x "$s" ]; then
        bad="$bad $script-missing-or-not-executable"
    elif ! sh -n "$s"; then
        bad="$bad $script-syntax"
    fi
done
if [ -n "$bad" ]; then
    fail "control files:$bad"
else
    pass "conffiles: /etc/kigen/kigen.yaml; postinst, prerm and postrm are sh"
fi

# 6. The maintainer scripts against the unpacked tree, without a running systemd: a first
# install makes the user, the directories and the catalog and enables the units; an
# upgrade does it again harmlessly; remove masks; purge forgets and deletes the state.
case_
bad=""
run() { # SCRIPT ARGS...
    local s=$1
    shift
    if ! DPKG_ROOT=$R DPKG_MAINTSCRIPT_PACKAGE=kigen DPKG_MAINTSCRIPT_NAME=$s \
        "$T/control/$s" "$@" >"$T/$s.log" 2>&1; then
        bad="$bad [$s $*: $(tr '\n' ' ' <"$T/$s.log")]"
    fi
}
run postinst configure
uid=$(grep '^kigen:' "$R/etc/passwd" 2>/dev/null | cut -d: -f3)
gid=$(grep '^kigen:' "$R/etc/passwd" 2>/dev/null | cut -d: -f4)
[ -n "$uid" ] || bad="$bad no-user-kigen"
for d in /var/lib/kigen /run/kigen; do
    got=$(stat -c '%a %u %g' "$R$d" 2>/dev/null)
    [ "$got" = "750 $uid $gid" ] || bad="$bad $d=[$got]"
done
[ -L "$R/etc/systemd/system/multi-user.target.wants/kigend.service" ] || bad="$bad service-not-enabled"
[ -L "$R/etc/systemd/system/sockets.target.wants/kigend.socket" ] || bad="$bad socket-not-enabled"
# One line per id: the ja entries ("-- ID ja") share their ids with the English ones.
ids=$(grep -c '^-- [0-9a-f]\{32\}$' "$SRC/units/kigen.catalog")
listed=$(journalctl --root="$R" --list-catalog 2>/dev/null | grep -c .)
[ "$ids" -gt 0 ] && [ "$listed" -eq "$ids" ] || bad="$bad catalog:$listed-of-$ids-ids"
run postinst configure 0.1.0
[ -L "$R/etc/systemd/system/multi-user.target.wants/kigend.service" ] || bad="$bad upgrade-disabled"
[ "$(grep -c '^kigen:' "$R/etc/passwd")" -eq 1 ] || bad="$bad upgrade-duplicated-user"
echo '{}' >"$R/var/lib/kigen/state.jsonl"
run prerm remove
run postrm remove
[ "$(readlink "$R/etc/systemd/system/kigend.service")" = /dev/null ] || bad="$bad remove-did-not-mask"
[ -d "$R/var/lib/kigen" ] || bad="$bad remove-deleted-state"
run postrm purge
[ ! -e "$R/var/lib/kigen" ] || bad="$bad purge-kept-state"
[ ! -e "$R/etc/systemd/system/kigend.service" ] || bad="$bad purge-kept-mask"
[ ! -e "$R/etc/systemd/system/multi-user.target.wants/kigend.service" ] || bad="$bad purge-kept-link"
if [ -n "$bad" ]; then
    fail "maintainer scripts:$bad"
else
    pass "install, upgrade, remove and purge work without a running systemd"
fi

echo "test_package: $((cases - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
