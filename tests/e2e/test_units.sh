#!/bin/bash
# The systemd side of the packaging (SPEC §11): the units pass `systemd-analyze verify`
# without a word, the service's sandbox rates 1.5 or better on `systemd-analyze security`,
# the sysusers and tmpfiles snippets make the user and directories they promise, and the
# units agree with the daemon's defaults and the man pages they name.
#
# Needs systemd-analyze, systemd-sysusers and systemd-tmpfiles (package systemd), and root:
# tmpfiles gives the directories to user kigen. A missing tool or privilege is a failure.
set -u

SRC=${KIGEN_SRC:?KIGEN_SRC is not set}
KIGEND=${KIGEND:?KIGEND is not set}
MAX_EXPOSURE=1.5

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

for tool in systemd-analyze systemd-sysusers systemd-tmpfiles awk; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "FAIL: $tool is not installed (apt-get install systemd); cannot check the units"
        exit 1
    fi
done
if [ "$(id -u)" -ne 0 ]; then
    echo "FAIL: must run as root: systemd-tmpfiles gives the directories to user kigen"
    exit 1
fi

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
SERVICE=$SRC/units/kigend.service
SOCKET=$SRC/units/kigend.socket

# 1. systemd-analyze verify, clean. It refuses an ExecStart= binary that does not exist,
# so a copy runs the built one; nothing else changes.
case_
mkdir -p "$T/units"
sed "s#^ExecStart=/usr/sbin/kigend #ExecStart=$KIGEND #" "$SERVICE" >"$T/units/kigend.service"
cp "$SOCKET" "$T/units/kigend.socket"
if ! grep -q "^ExecStart=$KIGEND " "$T/units/kigend.service"; then
    fail "kigend.service has no 'ExecStart=/usr/sbin/kigend ...' line"
else
    out=$(cd "$T/units" && systemd-analyze verify --man=no --generators=no \
        "$T/units/kigend.service" "$T/units/kigend.socket" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
        fail "systemd-analyze verify (exit $rc):"
        printf '%s\n' "$out" | sed 's/^/    /'
    else
        pass "systemd-analyze verify: no complaint"
    fi
fi

# 2. Exposure, as systemd-analyze rates it offline (0 best, 10 worst).
case_
out=$(systemd-analyze security --offline=true --no-pager "$SERVICE" 2>&1)
rc=$?
level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for kigend\.service: \([0-9.]*\).*/\1/p')
if [ -z "$level" ]; then
    fail "systemd-analyze security gave no overall exposure level (exit $rc):"
    printf '%s\n' "$out" | tail -5 | sed 's/^/    /'
elif awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l <= m) }'; then
    pass "exposure $level (at most $MAX_EXPOSURE)"
else
    fail "exposure $level is above $MAX_EXPOSURE; what counts:"
    printf '%s\n' "$out" | grep '✗' | sed 's/^/    /'
fi

# 3. The settings the brief and SPEC §11 rely on are there, and not only by default.
case_
missing=""
for want in 'Type=notify' 'User=kigen' 'Group=kigen' 'StateDirectory=kigen' \
    'RuntimeDirectory=kigen' 'RuntimeDirectoryPreserve=yes' 'ConfigurationDirectory=kigen' \
    'ExecStart=/usr/sbin/kigend --config /etc/kigen/kigen.yaml' 'Restart=on-failure' \
    'ProtectSystem=strict' 'PrivateTmp=yes' 'PrivateDevices=yes' 'NoNewPrivileges=yes' \
    'CapabilityBoundingSet=' 'AmbientCapabilities=' \
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' 'SystemCallFilter=@system-service' \
    'SystemCallArchitectures=native' 'MemoryDenyWriteExecute=yes' 'ProtectProc=invisible' \
    'ProcSubset=pid' 'UMask=0027'; do
    grep -qxF "$want" "$SERVICE" || missing="$missing [$want]"
done
grep -q '^WatchdogSec=[1-9]' "$SERVICE" || missing="$missing [WatchdogSec=]"
grep -q '^ExecReload=' "$SERVICE" || missing="$missing [ExecReload=]"
grep -qxF 'LoadCredential=naccs-pass' "$SERVICE" || missing="$missing [LoadCredential=naccs-pass]"
grep -q '^#LoadCredential=naccs-pass:/' "$SERVICE" || missing="$missing [#LoadCredential= example]"
for want in 'ListenStream=/run/kigen/kigen.sock' 'SocketMode=0660' 'SocketUser=kigen' \
    'SocketGroup=kigen' 'Service=kigend.service'; do
    grep -qxF "$want" "$SOCKET" || missing="$missing [kigend.socket: $want]"
done
if [ -n "$missing" ]; then
    fail "missing settings:$missing"
else
    pass "the settings of SPEC §11 are set"
fi

# 4. The socket unit, the shipped configuration and the daemon agree on the socket path,
# and the service's state directory is the configuration's state_dir.
case_
listen=$(sed -n 's/^ListenStream=//p' "$SOCKET")
conf_socket=$(sed -n 's/^socket: *\([^ #]*\).*/\1/p' "$SRC/conf/kigen.yaml")
conf_state=$(sed -n 's/^state_dir: *\([^ #]*\).*/\1/p' "$SRC/conf/kigen.yaml")
if [ "$listen" != "/run/kigen/kigen.sock" ] || [ "$conf_socket" != "$listen" ]; then
    fail "socket paths differ: ListenStream=$listen, conf/kigen.yaml socket: $conf_socket"
elif ! grep -q "\"$listen\"" "$SRC/src/config.c"; then
    fail "src/config.c's default socket is not $listen"
elif [ "$conf_state" != "/var/lib/kigen" ]; then
    fail "conf/kigen.yaml state_dir: $conf_state is not StateDirectory=kigen (/var/lib/kigen)"
else
    pass "socket $listen and state_dir $conf_state agree"
fi

# 4b. Every credential the shipped configuration reads is one the unit loads, by the
# credstore form (no path), so that /etc/credstore/NAME is all an administrator adds. The
# credential reaching kigend is not tested here: that needs a running systemd (PID 1),
# which these tests do not have; test_units_seccomp.sh reads one from $CREDENTIALS_DIRECTORY.
case_
creds=$(sed -n 's/^ *- credential: *\([^ #]*\).*/\1/p' "$SRC/conf/kigen.yaml")
bad=""
for c in $creds; do
    grep -qxF "LoadCredential=$c" "$SERVICE" || bad="$bad $c"
done
if [ -z "$creds" ]; then
    fail "conf/kigen.yaml reads no credential (want '- credential: naccs-pass')"
elif [ -n "$bad" ]; then
    fail "conf/kigen.yaml reads credentials kigend.service does not load:$bad"
elif ! out=$("$KIGEND" --check-config "$SRC/conf/kigen.yaml" 2>&1); then
    fail "kigend --check-config conf/kigen.yaml: $out"
else
    pass "credentials read and loaded agree:" $creds
fi

# 5. Every man page a unit names is in man/.
case_
bad=""
for unit in "$SERVICE" "$SOCKET"; do
    for ref in $(sed -n 's/^Documentation=//p' "$unit"); do
        case $ref in
        man:*)
            page=${ref#man:}
            name=${page%(*}
            sect=${page##*(}
            sect=${sect%)}
            [ -f "$SRC/man/$name.$sect" ] || bad="$bad $ref"
            ;;
        file:///usr/share/doc/kigen/*)
            [ -f "$SRC/${ref#file:///usr/share/doc/kigen/}" ] || bad="$bad $ref"
            ;;
        esac
    done
done
if [ -n "$bad" ]; then
    fail "Documentation= names what is not shipped:$bad"
else
    pass "Documentation= pages exist"
fi

# 6. sysusers makes user and group kigen, home /var/lib/kigen, no login shell.
case_
R=$T/root
mkdir -p "$R/etc"
out=$(systemd-sysusers --root="$R" "$SRC/units/kigen.sysusers" 2>&1)
rc=$?
entry=$(grep '^kigen:' "$R/etc/passwd" 2>/dev/null)
uid=$(printf '%s' "$entry" | cut -d: -f3)
gid=$(printf '%s' "$entry" | cut -d: -f4)
if [ $rc -ne 0 ]; then
    fail "systemd-sysusers (exit $rc): $out"
elif [ -z "$entry" ] || ! grep -q "^kigen:x:$gid:" "$R/etc/group"; then
    fail "systemd-sysusers made no user and group kigen: $out"
elif [ "$(printf '%s' "$entry" | cut -d: -f6)" != /var/lib/kigen ] ||
    [ "$(printf '%s' "$entry" | cut -d: -f7)" != /usr/sbin/nologin ] ||
    [ "$uid" -ge 1000 ] || [ "$uid" -eq 0 ]; then
    fail "user kigen is not a system user at home in /var/lib/kigen: $entry"
elif printf '%s\n' "$out" | grep -qiv '^Creating \(user\|group\)'; then
    fail "systemd-sysusers complained: $out"
else
    pass "sysusers: $entry"
fi

# 7. tmpfiles makes /var/lib/kigen and /run/kigen, 0750 kigen:kigen, and says nothing.
case_
out=$(systemd-tmpfiles --root="$R" --create "$SRC/units/kigen.tmpfiles" 2>&1)
rc=$?
bad=""
for d in /var/lib/kigen /run/kigen; do
    got=$(stat -c '%a %u %g %F' "$R$d" 2>/dev/null)
    [ "$got" = "750 $uid $gid directory" ] || bad="$bad $d=[$got]"
done
if [ $rc -ne 0 ] || [ -n "$out" ]; then
    fail "systemd-tmpfiles (exit $rc): $out"
elif [ -n "$bad" ]; then
    fail "tmpfiles did not make the directories 0750 $uid:$gid:$bad"
else
    pass "tmpfiles: /var/lib/kigen and /run/kigen are 0750 kigen:kigen"
fi

echo "test_units: $((cases - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
