#!/bin/bash
# kigend.service allows only the system calls of its SystemCallFilter= lines (others fail
# with EPERM). This runs the real daemon under strace through what it does in service:
# scan every fixture format with password sources, probe (DNS, a refused port, a TLS
# handshake that fails), alert to syslog, an exec hook and a textfile, serve the
# status socket (status, list, show, probes, metrics, rescan), serve metrics_listen, reload
# on SIGHUP and on request, and stop on SIGTERM; then checks that every system call the
# daemon's threads made is one the unit allows. A hook's own calls after its execve() are
# the hook's business and are left out. Not journald: other tests read alerts back from a
# journald of their own, and these must not land there (the journald sink needs socket(),
# connect(), sendto(), and for a large entry memfd_create(), fcntl() and sendmsg(), which
# @system-service has: memfd_create is in its @ipc).
#
# Needs strace, systemd-analyze, python3 and root (strace). A missing tool is a failure.
# Sanitizer builds make system calls of their own (their runtime), so the check is made
# on the regular build, which `make check` runs as well; here it says so and passes.
set -u

SRC=${KIGEN_SRC:?KIGEN_SRC is not set}
KIGEND=${KIGEND:?KIGEND is not set}
KIGENCTL=${KIGENCTL:?KIGENCTL is not set}
FIX=${KIGEN_FIXTURES:?KIGEN_FIXTURES is not set}
SERVICE=$SRC/units/kigend.service

for tool in strace:strace systemd-analyze:systemd python3:python3 readelf:binutils; do
    if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
        echo "FAIL: ${tool%%:*} is not installed (apt-get install ${tool#*:})"
        exit 1
    fi
done
if [ "$(id -u)" -ne 0 ]; then
    echo "FAIL: must run as root (strace follows the daemon's threads and hooks)"
    exit 1
fi
if readelf -sW "$KIGEND" | grep -q -E '__asan_init|__ubsan_handle'; then
    echo "not applicable: $KIGEND is a sanitizer build, whose runtime makes system calls"
    echo "the daemon does not; the regular build's run of this test checks the filter"
    exit 0
fi

T=$(mktemp -d)
DAEMON=
HELPER=
STRACE=
cleanup() {
    [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null
    [ -n "$STRACE" ] && kill "$STRACE" 2>/dev/null
    [ -n "$HELPER" ] && kill "$HELPER" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

# What the unit allows: its SystemCallFilter= lines in order, groups expanded.
allowed=$(python3 - "$SERVICE" <<'EOF'
import re, subprocess, sys

out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"],
                     capture_output=True, text=True, check=True).stdout
groups, cur = {}, None
for line in out.splitlines():
    if line.startswith("@"):
        cur = groups.setdefault(line.strip(), [])
    elif cur is not None and line.strip() and not line.strip().startswith("#"):
        cur.append(line.strip())

def expand(names):
    s = set()
    for n in names:
        s |= expand(groups.get(n, [])) if n.startswith("@") else {n}
    return s

allow = None
for line in open(sys.argv[1]):
    m = re.match(r"^SystemCallFilter=(~?)(.*)$", line.strip())
    if not m:
        continue
    names = expand(m.group(2).split())
    if allow is None:
        if m.group(1):
            sys.exit("the first SystemCallFilter= line is a deny list; this test wants an allow list")
        allow = set()
    if m.group(1):
        allow -= names
    else:
        allow |= names
if not allow:
    sys.exit("kigend.service has no SystemCallFilter= allow list")
print("\n".join(sorted(allow)))
EOF
) || {
    echo "FAIL: cannot work out what kigend.service allows: $allowed"
    exit 1
}

# A keystore of every format, with sidecars, env and credential password sources.
mkdir -p "$T/ks" "$T/state" "$T/creds"
cp "$FIX"/certs/*.pem "$FIX"/certs/*.p12 "$FIX"/certs/*.p7b "$FIX"/certs/*.pass "$T/ks/" 2>/dev/null
cp "$FIX"/jks/*.jks "$FIX"/jks/*.jceks "$FIX"/jks/*.pass "$T/ks/" 2>/dev/null
echo wrong >"$T/creds/pw"
ports=$(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
read -r closed_port tcp_port metrics_port <<<"$ports"
# A listener that accepts and hangs up: the TLS handshake of the probe fails.
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
end = time.time() + 60
while time.time() < end:
    s.settimeout(1)
    try: c, _ = s.accept(); c.close()
    except socket.timeout: pass
' "$tcp_port" &
HELPER=$!
cat >"$T/kigen.yaml" <<EOF
state_dir: $T/state
socket: $T/state/kigen.sock
metrics_listen: 127.0.0.1:$metrics_port
keystores:
  - name: fixtures
    path: $T/ks
    passwords:
      - env: KIGEN_SECCOMP_PW
      - credential: pw
probes:
  interval: 1s
  timeout: 2s
  failures_before_alert: 1
  targets:
    - { name: refused, host: 127.0.0.1, port: $closed_port, tls: false }
    - { name: hangup, host: localhost, port: $tcp_port, tls: true }
maintenance: []
alerts:
  journald: false
  syslog: $T/state/no-syslog.sock
  exec: "true"
  textfile: $T/state/kigen.prom
EOF

# sh writes its pid and becomes kigend (the same process): the pid to signal.
KIGEN_SECCOMP_PW=wrong CREDENTIALS_DIRECTORY=$T/creds \
    strace -f -ff -qq -o "$T/trace" sh -c 'echo $$ >"$0"; exec "$@"' "$T/pid" \
    "$KIGEND" --config "$T/kigen.yaml" >"$T/daemon.log" 2>&1 &
STRACE=$!
for _ in $(seq 50); do
    [ -s "$T/pid" ] && break
    sleep 0.1
done
DAEMON=$(cat "$T/pid" 2>/dev/null)
if [ -z "$DAEMON" ]; then
    echo "FAIL: kigend did not start under strace:"
    sed 's/^/    /' "$T/daemon.log"
    exit 1
fi
ctl() {
    "$KIGENCTL" --socket "$T/state/kigen.sock" "$@" >>"$T/ctl.log" 2>&1
}
# status exits 0, 1 or 2 once the daemon answers (3: not yet).
for _ in $(seq 100); do
    ctl status
    [ $? -lt 3 ] && break
    sleep 0.2
done
sha=$("$KIGENCTL" --socket "$T/state/kigen.sock" list --json 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["certificates"][0]["sha256"])' 2>/dev/null)
ctl list
ctl show "$sha"
ctl probes
ctl metrics
ctl rescan
python3 -c '
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n"); s.recv(65536)
except OSError:
    pass' "$metrics_port"
sleep 3
kill -HUP "$DAEMON"
sleep 1
ctl reload
sleep 1
kill -TERM "$DAEMON"
wait "$STRACE"
rc=$?
DAEMON=

fails=0
if [ $rc -ne 0 ]; then
    echo "FAIL: kigend exited $rc under strace:"
    tail -20 "$T/daemon.log" | sed 's/^/    /'
    fails=1
fi
if [ ! -s "$T/state/kigen.prom" ] || ! grep -q . "$T/ctl.log"; then
    echo "FAIL: the daemon did not do its work (no textfile or no answers):"
    tail -20 "$T/daemon.log" "$T/ctl.log" 2>/dev/null | sed 's/^/    /'
    fails=1
fi

# The calls of the daemon's threads, and of its children up to their execve().
used=$(for f in "$T"/trace.*; do
    awk '/^execve\(/ && !/kigend/ && / = 0$/ { exit } { print }' "$f"
done | sed -n -e 's/^\([a-z_0-9]*\)(.*/\1/p' -e 's/^<\.\.\. \([a-z_0-9]*\) resumed>.*/\1/p' | sort -u)
forbidden=$(comm -23 <(printf '%s\n' "$used") <(printf '%s\n' "$allowed"))
if [ -n "$forbidden" ]; then
    echo "FAIL: kigend makes system calls kigend.service does not allow (they would fail with EPERM):"
    for call in $forbidden; do
        example=$(grep -h -m1 "^$call(" "$T"/trace.* | head -1)
        echo "    $call: $example"
    done
    fails=1
fi
echo "$(printf '%s\n' "$used" | grep -c .) distinct system calls in $(ls "$T"/trace.* | wc -l) threads and children"
if [ $fails -eq 0 ]; then
    echo "ok: every system call kigend made is allowed by kigend.service"
fi
exit $fails
