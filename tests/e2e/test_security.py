#!/usr/bin/env python3
"""End to end: what another user, a client or a keystore's contents can make kigen do.

  socket_access     the socket is 0660 whatever the umask; another uid is refused by the file
                    system; a member of the socket's group may look but not rescan or reload
                    (SO_PEERCRED), also when the daemon runs as its own user
  hostile_requests  path traversal, very long strings, NUL bytes, duplicate keys, deep
                    nesting and invalid UTF-8 on the socket: refused, no file touched (strace)
  socket_symlink    a symlink (or file) planted at the socket path by another user: the
                    daemon neither unlinks, chmods, chowns nor binds through it
  keystore_links    symlinks out of a keystore (to /etc/shadow, a file, a directory, /dev/zero,
                    a ../ trick) with follow_symlinks false: never opened (strace)
  symlink_race      a file or directory of the keystore swapped with a symlink to the outside
                    while the daemon scans: the outside is still never read
  secrets           PKCS#12 passwords from file:, a .pass sidecar and env: (canaries) and the
                    private key: in no log, syslog or journald entry, socket answer, state
                    file, hook environment, textfile, nor in the process memory (file: and
                    sidecar) or a core dump (gcore, and SIGABRT with RLIMIT_CORE)

Usage: test_security.py [CASE ...]   (all cases by default)
"""
import json
import os
import re
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kigentest import (KIGEND, NOBODY, Daemon, Dgram, cert, check, fact,  # noqa: E402
                       finish, need, scratch, wait_until)
from kigensock import raw_answer, request  # noqa: E402

KIGENCTL = os.environ["KIGENCTL"]
NOW = "2026-11-24T12:00:00Z"
cases = 0


def kigenctl(sock, *args, prefix=(), binary=KIGENCTL):
    return subprocess.run(list(prefix) + [binary, "--socket", sock] + list(args),
                          capture_output=True, text=True, timeout=60)


def as_user(uid, gid, groups=None):
    g = ["--groups=" + ",".join(map(str, groups))] if groups else ["--clear-groups"]
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid] + g


def private_ctl(top):
    """A copy of kigenctl any user can run, whatever the permissions of the build tree."""
    ctl = os.path.join(top, "kigenctl")
    shutil.copy(KIGENCTL, ctl)
    os.chmod(ctl, 0o755)
    return ctl


class Strace:
    """strace -f on a live process, recording file system calls until stopped."""

    def __init__(self, pid, out):
        need("strace")
        self.out = out
        self.pid = pid
        self.proc = subprocess.Popen(["strace", "-f", "-qq", "-y", "-e", "trace=%file,%desc",
                                      "-o", out, "-p", str(pid)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tasks = "/proc/%d/task" % pid
        ok = wait_until(lambda: all(tracer(os.path.join(tasks, t)) for t in os.listdir(tasks)), 10)
        if not ok:
            raise RuntimeError("strace did not attach to %d" % pid)

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)
        with open(self.out) as f:
            return f.read()


def tracer(task):
    try:
        with open(os.path.join(task, "status")) as f:
            return int(re.search(r"TracerPid:\s+(\d+)", f.read()).group(1)) != 0
    except (OSError, AttributeError):
        return True  # the thread is gone


def opened_paths(trace):
    """Paths given to open/openat/openat2/creat/execve in an strace log (strace -y: what the
    returned descriptor really is, since a name relative to a directory says little)."""
    out = []
    for line in trace.splitlines():
        m = re.search(r"\b(open|openat|openat2|creat|execve)\((?:AT_FDCWD, |\d+<?[^,]*, )?"
                      r"\"((?:[^\"\\]|\\.)*)\"", line)
        if m:
            opened = re.search(r"= \d+<(.*)>$", line)
            out.append(opened.group(1) if opened else m.group(2))
    return out


def touched_paths(trace):
    """Every quoted path of every traced call, with the call's name."""
    out = []
    for line in trace.splitlines():
        m = re.match(r"\d+\s+(\w+)\((.*)", line)
        if m:
            for p in re.findall(r"\"((?:[^\"\\]|\\.)*)\"", m.group(2)):
                if p.startswith("/"):
                    out.append((m.group(1), p))
    return out


def file_facts(path):
    st = os.lstat(path)
    data = None
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            data = f.read()
    return (st.st_ino, st.st_mode, st.st_uid, st.st_gid, data)


# ---- cases ----

def case_socket_access():
    """Mode 0660 whatever the umask; other users refused; group members may only look."""
    global cases
    cases += 1
    need("setpriv")
    top = scratch("acc")
    ks = os.path.join(top, "ks")
    os.makedirs(ks)
    for leaf in ("ok", "expired"):
        shutil.copy(cert(leaf + ".pem"), os.path.join(ks, leaf + ".pem"))
        os.chmod(os.path.join(ks, leaf + ".pem"), 0o644)
    ctl = private_ctl(top)
    sock = os.path.join(top, "kigen.sock")
    for umask in (0o000, 0o077):
        d = Daemon("acc", [("ks", ks)], extra="socket: %s\n" % sock, now=NOW)
        old = os.umask(umask)
        try:
            check(d.start(), "READY=1: %s" % d.stderr())
        finally:
            os.umask(old)
        try:
            st = os.stat(sock)
            check(stat.S_IMODE(st.st_mode) == 0o660 and st.st_uid == 0,
                  "umask %03o: the socket is 0660 root: %o %d" % (umask, st.st_mode, st.st_uid))
            if umask:
                continue
            # Another user and group: refused by the file system, before the daemon sees it.
            p = kigenctl(sock, "status", prefix=NOBODY, binary=ctl)
            check(p.returncode == 3 and "Permission denied" in p.stderr,
                  "uid 65534 without the group is refused: %d %r" % (p.returncode, p.stderr))
            # Another user in the socket's group: may look, may not act.
            member = as_user(65534, 65534, [st.st_gid])
            p = kigenctl(sock, "status", prefix=member, binary=ctl)
            check(p.returncode == 2, "a member of group %d may ask for status: %d %r"
                  % (st.st_gid, p.returncode, p.stderr))
            p = kigenctl(sock, "--json", "list", prefix=member, binary=ctl)
            check(p.returncode == 2 and len(json.loads(p.stdout or "{}").get("certificates", []))
                  == 2, "and list: %d" % p.returncode)
            scans = request(sock, {"cmd": "status"})["scans"]
            for cmd in ("rescan", "reload"):
                p = kigenctl(sock, cmd, prefix=member, binary=ctl)
                check(p.returncode == 1 and "permission denied" in p.stderr,
                      "%s by a group member is refused: %d %r" % (cmd, p.returncode, p.stderr))
            time.sleep(0.3)
            check(request(sock, {"cmd": "status"})["scans"] == scans, "no scan happened")
            check(not [a for a in d.alerts(0.2) if a["msgid"] == "config.reloaded"],
                  "no reload happened")
        finally:
            d.close()

    # The daemon as its own user (65534): that uid and root may act; a group member may not.
    rundir = os.path.join(top, "run")
    os.makedirs(rundir)
    os.chown(rundir, 65534, 65534)
    sock = os.path.join(rundir, "kigen.sock")
    d = Daemon("acc2", [("ks", ks)], extra="socket: %s\n" % sock, now=NOW)
    try:
        d.open_to(65534)
        check(d.start(prefix=NOBODY), "READY=1 as uid 65534: %s" % d.stderr())
        st = os.stat(sock)
        check((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o660, 65534, 65534),
              "the socket is 0660 65534:65534: %o %d:%d" % (st.st_mode, st.st_uid, st.st_gid))
        for who, prefix, want in [("root", [], 0), ("the daemon's uid", NOBODY, 0),
                                  ("a group member (uid 1)", as_user(1, 1, [65534]), 1)]:
            p = kigenctl(sock, "rescan", prefix=prefix, binary=ctl)
            check(p.returncode == want, "rescan by %s exits %d: %d %r"
                  % (who, want, p.returncode, p.stderr))
        p = kigenctl(sock, "status", prefix=as_user(1, 1, [65534]), binary=ctl)
        check(p.returncode == 2, "a group member may look: %d %r" % (p.returncode, p.stderr))
        p = kigenctl(sock, "status", prefix=as_user(1, 1), binary=ctl)
        check(p.returncode == 3, "uid 1 outside the group is refused: %d" % p.returncode)
    finally:
        d.close()
        shutil.rmtree(top, ignore_errors=True)


def case_hostile_requests():
    """Requests that try to reach files, overflow or confuse the parser."""
    global cases
    cases += 1
    need("strace", "setpriv")
    top = scratch("host")
    ks = os.path.join(top, "ks")
    os.makedirs(ks)
    shutil.copy(cert("expired.pem"), os.path.join(ks, "a.pem"))
    sock = os.path.join(top, "kigen.sock")
    d = Daemon("host", [("naccs", ks)], extra="socket: %s\n" % sock, now=NOW)
    long = "A" * 60000
    hostile = [
        {"cmd": "show", "sha256": "../../../../../../etc/shadow"},
        {"cmd": "show", "sha256": ("../" * 22)[:64]},
        {"cmd": "show", "sha256": "/etc/passwd" + "0" * 53},
        {"cmd": "show", "sha256": long},
        {"cmd": "list", "keystore": "../../etc"},
        {"cmd": "list", "keystore": "/etc/shadow"},
        {"cmd": "list", "keystore": long},
        {"cmd": "list", "state": "../../../etc/passwd"},
        {"cmd": "list", "within": "../../etc"},
        {"cmd": "list", "within": "9" * 5000 + "d"},
        {"cmd": "../../../../bin/sh"},
        {"cmd": "status", "path": "/etc/shadow"},
        {"cmd": long},
        {"cmd": ["status"]},
        {"cmd": {"cmd": "rescan"}},
    ]
    raw = [
        b'{"cmd":"status"}\x00{"cmd":"rescan"}\n',
        b'{"cmd":"re\x00scan"}\n',
        b'{"cmd":"show","sha256":"ab\\u0000../../etc/shadow"}\n',
        b'{"cmd":"stat\\u0000us"}\n',
        b'{"cmd":"status","cmd":"rescan"}\n',
        b'{"cmd":"\xff\xfe\xfd"}\n',
        b'{"cmd":"list","keystore":"na\xc0\xafccs"}\n',
        b"[" * 30000 + b"]" * 30000 + b"\n",
        b'{"a":' * 10000 + b"1" + b"}" * 10000 + b"\n",
        b'{"cmd":"status","n":1e999999}\n',
        b"\x00" * 1000 + b"\n",
    ]
    try:
        check(d.start(), "READY=1: %s" % d.stderr())
        check(d.wait_alert(lambda a: a["msgid"] == "cert.expired", 5), "the first alert")
        time.sleep(1.5)  # the state is saved after the alert: no file work left
        scans = request(sock, {"cmd": "status"})["scans"]
        tr = Strace(d.proc.pid, os.path.join(top, "strace.log"))
        answers = []
        for req in hostile:
            line = (json.dumps(req) + "\n").encode()
            answers.append((json.dumps(req)[:60], raw_answer(sock, line)))
        for line in raw:
            answers.append((repr(line[:40]), raw_answer(sock, line)))
        trace = tr.stop()
        for what, ans in answers:
            try:
                a = json.loads(ans)
            except ValueError:
                a = None
            check(isinstance(a, dict) and a.get("ok") is False and a.get("error"),
                  "%s is refused with an error: %r" % (what, ans[:200]))
            check(len(ans) < 1024, "%s: the error does not echo the request at length: %d bytes"
                  % (what, len(ans)))
            check(all(b < 128 for b in ans), "%s: the answer is ASCII JSON" % what)
            check(b"/etc/" not in ans or b"unknown" in ans or b"must" in ans,
                  "%s: %r" % (what, ans[:200]))
        check(re.search(r"\b(accept4?|read)\(", trace), "strace saw the requests: %r" % trace[:300])
        files = [p for c, p in touched_paths(trace) if c != "execve"]
        check(not files, "the hostile requests made the daemon touch no file: %s" % files[:10])
        check(d.proc.poll() is None, "the daemon is up")
        check(request(sock, {"cmd": "status"})["scans"] == scans,
              "no request slipped a rescan through (NUL, duplicate key)")
        # kigenctl refuses the same before it connects, or relays the daemon's refusal.
        for args in (["show", "../../etc/passwd"], ["list", "--keystore", "../../etc"],
                     ["list", "--within", "../../etc"], ["list", "--state", "/etc/shadow"]):
            p = kigenctl(sock, *args)
            check(p.returncode in (1, 3) and p.stderr.startswith("kigenctl: ") and not p.stdout,
                  "kigenctl %s is refused (exit 1 or 3): %d %r"
                  % (" ".join(args), p.returncode, p.stderr))
    finally:
        d.close()
        shutil.rmtree(top, ignore_errors=True)


def case_socket_symlink():
    """Something planted at the socket path by another user."""
    global cases
    cases += 1
    need("setpriv")
    top = scratch("plant")
    ks = os.path.join(top, "ks")
    os.makedirs(ks)
    shutil.copy(cert("ok.pem"), os.path.join(ks, "ok.pem"))
    # The socket's directory belongs to the attacker (say, a compromised service user); it is
    # not sticky, so the kernel's protected_symlinks does not step in: the daemon must.
    rundir = os.path.join(top, "run")
    os.makedirs(rundir)
    os.chown(rundir, 65534, 65534)
    victims = os.path.join(top, "victims")
    os.makedirs(victims)
    victim = os.path.join(victims, "shadow")
    with open(victim, "w") as f:
        f.write("root:$6$secret:19000::::::\n")
    os.chmod(victim, 0o600)
    dead = os.path.join(victims, "other.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(dead)
    s.close()  # a socket file nothing answers on: "stale" if reached
    dead_facts = file_facts(dead)
    sock = os.path.join(rundir, "kigen.sock")

    def plant(kind):
        cmd = {"link-file": ["ln", "-s", victim, sock],
               "link-socket": ["ln", "-s", dead, sock],
               "link-dangling": ["ln", "-s", os.path.join(victims, "new.sock"), sock],
               "file": ["sh", "-c", "echo planted > '%s'" % sock],
               "dir": ["mkdir", sock]}[kind]
        subprocess.run(NOBODY + cmd, check=True)

    try:
        for kind in ("link-file", "link-socket", "link-dangling", "file", "dir"):
            plant(kind)
            before = file_facts(sock)
            victim_before = file_facts(victim)
            d = Daemon("plant", [("ks", ks)], extra="socket: %s\n" % sock, now=NOW)
            try:
                check(d.start(), "%s: READY=1 without a socket: %s" % (kind, d.stderr()))
                check("Cannot open the status socket" in d.stderr() and "refusing" in d.stderr(),
                      "%s: the daemon says it refuses the path: %s" % (kind, d.stderr()))
                check(d.stop() == 0, "%s: stops cleanly" % kind)
            finally:
                d.close()
            check(os.path.lexists(sock) and file_facts(sock) == before,
                  "%s: what was planted is left as it was" % kind)
            check(file_facts(victim) == victim_before, "%s: the file a link points to is not "
                  "unlinked, chmod'ed, chown'ed or written" % kind)
            check(os.path.exists(dead) and file_facts(dead) == dead_facts,
                  "%s: the socket a link points to is not removed" % kind)
            check(not os.path.lexists(os.path.join(victims, "new.sock")),
                  "%s: no socket is bound through a dangling link" % kind)
            if os.path.isdir(sock) and not os.path.islink(sock):
                os.rmdir(sock)
            else:
                os.unlink(sock)

        # A dead socket of another user at the path itself is stale: replaced, and ours.
        subprocess.run(NOBODY + [sys.executable, "-c", "import socket; socket.socket("
                                 "socket.AF_UNIX).bind(%r)" % sock], check=True)
        d = Daemon("plant2", [("ks", ks)], extra="socket: %s\n" % sock, now=NOW)
        try:
            check(d.start(), "READY=1 over a stale socket")
            st = os.lstat(sock)
            check(stat.S_ISSOCK(st.st_mode) and st.st_uid == 0 and
                  stat.S_IMODE(st.st_mode) == 0o660, "the stale socket is replaced by ours")
            check(request(sock, {"cmd": "status"}).get("ok"), "and it answers")
        finally:
            d.close()
    finally:
        shutil.rmtree(top, ignore_errors=True)


def keystore_with_links(top):
    """A keystore with links out of it (and one inside), and what lies outside."""
    ks, out = os.path.join(top, "ks"), os.path.join(top, "outside")
    os.makedirs(os.path.join(ks, "sub"))
    os.makedirs(os.path.join(out, "dir"))
    shutil.copy(cert("ok.pem"), os.path.join(ks, "tanaka.pem"))
    shutil.copy(cert("renewal_open.pem"), os.path.join(ks, "sub", "suzuki.pem"))
    shutil.copy(cert("expired.pem"), os.path.join(out, "secret.pem"))
    shutil.copy(cert("critical.pem"), os.path.join(out, "dir", "other.pem"))
    os.mkfifo(os.path.join(out, "fifo"))
    links = {
        "shadow.pem": "/etc/shadow",
        "secret.pem": os.path.join(out, "secret.pem"),
        "outdir": os.path.join(out, "dir"),
        "trick.pem": "../ks/../outside/secret.pem",
        "sub/up.pem": "../../outside/secret.pem",
        "zero.pem": "/dev/zero",
        "fifo.pem": os.path.join(out, "fifo"),
        "root": "/",
    }
    for name, target in links.items():
        os.symlink(target, os.path.join(ks, name))
    os.symlink("tanaka.pem", os.path.join(ks, "inner.pem"))  # inside: followed, not twice
    os.symlink("..", os.path.join(ks, "sub", "loop"))  # a loop, inside
    return ks, out, links


def case_keystore_links():
    """Links out of a keystore are never opened when follow_symlinks is false."""
    global cases
    cases += 1
    need("strace")
    top = scratch("links")
    ks, out, links = keystore_with_links(top)
    d = Daemon("links", [("ks", ks, "recursive: true, follow_symlinks: false")], now=NOW)
    try:
        log = os.path.join(top, "once.strace")
        p = subprocess.run(["strace", "-f", "-qq", "-y", "-e", "trace=%file,%desc", "-o", log, KIGEND,
                            "--config", d.config, "--once", "--format", "json", "--now", NOW],
                           capture_output=True, text=True, timeout=120)
        rep = json.loads(p.stdout)
        paths = sorted(os.path.relpath(c["path"], ks) for c in rep["certificates"])
        check(paths == ["sub/suzuki.pem", "tanaka.pem"],
              "only the keystore's own files are read: %s" % paths)
        shas = {c["sha256"] for c in rep["certificates"]}
        check(fact("expired", "sha256") not in shas and fact("critical", "sha256") not in shas,
              "no certificate from outside")
        with open(log) as f:
            opened = opened_paths(f.read())
        bad = [o for o in opened if o.startswith(out) or o == "/etc/shadow" or o == "/dev/zero" or
               os.path.relpath(o, ks) in links or o.startswith(os.path.join(ks, "outdir")) or
               o.startswith(os.path.join(ks, "root"))]
        check(not bad, "--once opens nothing through a link out of the keystore: %s" % bad)
        check(os.path.join(ks, "inner.pem") not in opened,
              "the inner link to a file already read is not read twice")

        # The daemon, under strace for a rescan, says the same.
        sock = os.path.join(top, "kigen.sock")
        d.write_config([("ks", ks, "recursive: true, follow_symlinks: false")],
                       "socket: %s\n" % sock)
        check(d.start(), "READY=1: %s" % d.stderr())
        tr = Strace(d.proc.pid, os.path.join(top, "daemon.strace"))
        scans = request(sock, {"cmd": "status"})["scans"]
        request(sock, {"cmd": "rescan"})
        check(wait_until(lambda: request(sock, {"cmd": "status"})["scans"] > scans, 10),
              "a rescan under strace")
        opened = opened_paths(tr.stop())
        check(any(o.startswith(ks) for o in opened), "strace saw the rescan read the keystore")
        bad = [o for o in opened if o.startswith(out) or o in ("/etc/shadow", "/dev/zero") or
               os.path.relpath(o, ks) in links]
        check(not bad, "the daemon opens nothing through a link out of the keystore: %s" % bad)
        a = request(sock, {"cmd": "list"})
        check(sorted(os.path.relpath(c["path"], ks) for c in a["certificates"]) ==
              ["sub/suzuki.pem", "tanaka.pem"], "the daemon's list: %s" % a["certificates"])
        check(not [x for x in d.alerts(0.5) if x["msgid"] == "cert.expired"],
              "no alert about a certificate outside")
        d.stop()

        # With follow_symlinks, the outside is read: the test would see it if it happened
        # (without the link to /: following it would walk the whole machine).
        os.unlink(os.path.join(ks, "root"))
        d.write_config([("ks", ks, "recursive: true, follow_symlinks: true")])
        p = subprocess.run([KIGEND, "--config", d.config, "--once", "--format", "json", "--now",
                            NOW], capture_output=True, text=True, timeout=120)
        shas = {c["sha256"] for c in json.loads(p.stdout)["certificates"]}
        check(fact("expired", "sha256") in shas, "follow_symlinks: true does read the outside")
    finally:
        d.close()
        shutil.rmtree(top, ignore_errors=True)


def case_symlink_race(swap_dirs=False):
    """A keystore entry swapped with a link to the outside while the daemon scans.

    The walk decides with lstat() and the read opens the path later: a user who may write to
    the keystore swaps a file (or, swap_dirs, a directory on its path) for a link between the
    two, or between two steps of the walk. Every open must stay beneath the keystore root.
    """
    global cases
    cases += 1
    top = scratch("race")
    ks, out, stage = (os.path.join(top, x) for x in ("ks", "outside", "stage"))
    for p in (ks, out, stage, os.path.join(out, "dir"), os.path.join(stage, "dirs")):
        os.makedirs(p)
    shutil.copy(cert("expired.pem"), os.path.join(out, "secret.pem"))
    shutil.copy(cert("critical.pem"), os.path.join(out, "dir", "x.pem"))
    shutil.copy(cert("ok.pem"), os.path.join(stage, "master.pem"))
    shutil.copy(cert("ok.pem"), os.path.join(ks, "victim.pem"))
    os.makedirs(os.path.join(ks, "sub"))
    shutil.copy(cert("ok.pem"), os.path.join(ks, "sub", "x.pem"))
    outside = {fact("expired", "sha256"), fact("critical", "sha256")}
    sock = os.path.join(top, "kigen.sock")
    d = Daemon("race", [("ks", ks, "recursive: true, follow_symlinks: false")],
               extra="socket: %s\n" % sock, now=NOW)
    stop = threading.Event()
    seen = set()

    def swap():
        k = 0
        victim, sub = os.path.join(ks, "victim.pem"), os.path.join(ks, "sub")
        while not stop.is_set():
            k += 1
            link = os.path.join(stage, "l%d" % k)
            os.symlink(os.path.join(out, "secret.pem"), link)
            os.rename(link, victim)
            copy = os.path.join(stage, "f%d" % k)
            os.link(os.path.join(stage, "master.pem"), copy)
            os.rename(copy, victim)
            if not swap_dirs:
                time.sleep(0.0005)
                continue
            # The directory: moved aside, a link in its place, then back.
            aside = os.path.join(stage, "dirs", "d%d" % k)
            os.rename(sub, aside)
            os.symlink(os.path.join(out, "dir"), sub)
            time.sleep(0.0005)
            os.unlink(sub)
            os.rename(aside, sub)

    try:
        check(d.start(), "READY=1: %s" % d.stderr())
        t = threading.Thread(target=swap)
        t.start()
        end = time.time() + 6
        while time.time() < end:
            request(sock, {"cmd": "rescan"})
            a = request(sock, {"cmd": "list"}, 30)
            for c in a["certificates"]:
                if c["sha256"] in outside:
                    seen.add((c["path"], c["sha256"][:12]))
            d.notify.read(0.02)
        stop.set()
        t.join()
        leaked = [(a["msgid"], a["sd"].get("paths")) for a in d.alerts(1)
                  if a["sd"].get("sha256") in outside]
        check(not seen, "no certificate from outside the keystore is ever in the inventory "
              "(TOCTOU between lstat and open): %s" % sorted(seen))
        check(not leaked, "no alert about a certificate outside the keystore: %s" % leaked[:4])
    finally:
        stop.set()
        d.close()
        shutil.rmtree(top, ignore_errors=True)


def is_sanitized(binary):
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def der_private_exponent(keyfile):
    """d of an RSA key, from its DER (RFC 8017 A.1.2: version, n, e, d, ...)."""
    der = subprocess.run(["openssl", "rsa", "-in", keyfile, "-outform", "DER", "-traditional"],
                         capture_output=True, check=True).stdout

    def tlv(buf, i):
        tag, n = buf[i], buf[i + 1]
        i += 2
        if n & 0x80:
            k = n & 0x7f
            n = int.from_bytes(buf[i:i + k], "big")
            i += k
        return tag, i, n

    _, i, _ = tlv(der, 0)  # SEQUENCE
    for _ in range(3):  # version, n, e
        _, i, n = tlv(der, i)
        i += n
    _, i, n = tlv(der, i)
    return der[i:i + n]


def forms(secret):
    """The ways a password may sit in memory: as is, and as PKCS#12's BMPString (UCS-2 BE)."""
    return [secret.encode(), secret.encode("utf-16-be"), secret.encode("utf-16-le")]


def find_in_memory(pid, needles):
    """Which needles occur in the readable memory of pid (/proc/PID/mem, as root)."""
    found = set()
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            parts = line.split()
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            special = len(parts) > 5 and parts[5] in ("[vvar]", "[vsyscall]", "[vvar_vclock]")
            if "r" not in parts[1] or hi - lo > (1 << 30) or special:
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except (OSError, OverflowError, ValueError):
                continue
            for name, needle in needles.items():
                if needle in data:
                    found.add(name)
    return found


def find_in_file(path, needles):
    with open(path, "rb") as f:
        data = f.read()
    return {name for name, needle in needles.items() if needle in data}


def case_secrets():
    """Canary passwords and a private key, looked for everywhere kigen writes or keeps."""
    global cases
    cases += 1
    need("openssl", "gcore", "setpriv")
    top = scratch("sec")
    canary = {"file": "CanaryFile-7Qx2z", "sidecar": "CanarySide-9Wv4y", "env": "CanaryEnv-3Kp8w"}
    dirs = {k: os.path.join(top, k) for k in ("kf", "ksc", "ke")}
    for p in dirs.values():
        os.makedirs(p)

    def p12(out, leaf, password):
        subprocess.run(["openssl", "pkcs12", "-export", "-in", cert(leaf + ".pem"), "-inkey",
                        cert(leaf + ".key"), "-certfile", cert("ca.pem"), "-name", leaf,
                        "-out", out, "-passout", "pass:" + password], check=True)

    p12(os.path.join(dirs["kf"], "tanaka.p12"), "expired", canary["file"])
    p12(os.path.join(dirs["kf"], "wrong.p12"), "ok", "Not-The-Password")
    p12(os.path.join(dirs["ksc"], "suzuki.p12"), "renewal_open", canary["sidecar"])
    with open(os.path.join(dirs["ksc"], "suzuki.p12.pass"), "w") as f:
        f.write(canary["sidecar"] + "\n")
    p12(os.path.join(dirs["ke"], "sato.p12"), "critical", canary["env"])
    passfile = os.path.join(top, "naccs.pass")
    with open(passfile, "w") as f:
        f.write(canary["file"] + "\n")
    os.chmod(passfile, 0o600)

    key_d = der_private_exponent(cert("expired.key"))
    key_pem_line = [ln for ln in open(cert("expired.key")).read().splitlines() if
                    not ln.startswith("-----")][5]
    needles = {}
    for k, v in canary.items():
        for i, f in enumerate(forms(v)):
            needles["%s password (%s)" % (k, ("ascii", "ucs2-be", "ucs2-le")[i])] = f
    needles["private key (d)"] = key_d[8:40]
    needles["private key (PEM)"] = key_pem_line.encode()
    text_needles = {k: v for k, v in needles.items() if "ascii" in k or "PEM" in k}

    sock = os.path.join(top, "kigen.sock")
    hook = os.path.join(top, "hook.env")
    textfile = os.path.join(top, "kigen.prom")
    d = Daemon("sec", [("kf", dirs["kf"], "passwords: [ { file: %s } ], password_sidecar: false"
                        % passfile),
                       ("ksc", dirs["ksc"], "password_sidecar: true"),
                       ("ke", dirs["ke"], "passwords: [ { env: NACCS_CANARY_PASS } ]")],
               extra='  exec: "env >> %s"\n  textfile: %s\nsocket: %s\n' % (hook, textfile, sock),
               now=NOW, journald=True)
    # A journald of our own in a private /run: what kigen sends it is read back raw.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from test_faults import PrivateMount  # noqa: E402
    mnt = PrivateMount("/run", "16m", setup="mkdir -p /run/systemd/journal &&")
    journal = Dgram(mnt.root + "/run/systemd/journal/socket")
    try:
        check(d.start(env={"NACCS_CANARY_PASS": canary["env"]}, prefix=mnt.enter()),
              "READY=1: %s" % d.stderr())
        for ev in ("cert.expired", "cert.renewal_open", "cert.critical"):
            check(d.wait_alert(lambda a: a["msgid"] == ev, 10), "%s sent" % ev)
        a = request(sock, {"cmd": "list"})
        formats = sorted({(os.path.basename(c["path"]), c["format"]) for c in a["certificates"]
                          if c["path"].endswith(".p12")})
        check(formats == [("sato.p12", "pkcs12"), ("suzuki.p12", "pkcs12"),
                          ("tanaka.p12", "pkcs12")],
              "each PKCS#12 file opened with its password: %s %s" % (formats, a["errors"]))
        check([(os.path.basename(e["path"]), e["error"]) for e in a["errors"]] ==
              [("wrong.p12", "wrong_password")], "the wrong one is reported: %s" % a["errors"])
        time.sleep(1.5)  # alerts delivered, state saved, hooks done

        places = {"stderr": d.stderr().encode(),
                  "syslog": "\n".join(d.syslog.messages).encode(),
                  "journald": "\n".join(journal.read(0.3)).encode(),
                  "hook environment": open(hook, "rb").read() if os.path.exists(hook) else b"",
                  "textfile": open(textfile, "rb").read(),
                  "state.jsonl": open(os.path.join(d.state, "state.jsonl"), "rb").read(),
                  "/proc/PID/environ": open("/proc/%d/environ" % d.proc.pid, "rb").read(),
                  "/proc/PID/cmdline": open("/proc/%d/cmdline" % d.proc.pid, "rb").read()}
        check(b"KIGEN_EVENT" in places["journald"], "journald got the alerts")
        check(b"KIGEN_EVENT=cert.expired" in places["hook environment"], "the hook ran")
        shas = [c["sha256"] for c in a["certificates"]]
        for cmd in [{"cmd": "status"}, {"cmd": "list"}, {"cmd": "probes"}, {"cmd": "metrics"}] + \
                [{"cmd": "show", "sha256": s} for s in shas]:
            places["socket %s" % cmd["cmd"]] = raw_answer(sock, (json.dumps(cmd) + "\n").encode())
        for cmd in (["status"], ["list"], ["metrics"], ["probes"], ["show", shas[0]]):
            places["kigenctl " + cmd[0]] = kigenctl(sock, *cmd).stdout.encode()
        for where, data in places.items():
            hits = [n for n, v in needles.items() if v in data]
            check(not hits, "nothing secret in %s: %s" % (where, hits))
        for where in ("stderr", "syslog", "journald", "hook environment"):
            check(len(places[where]) > 0, "%s was looked at and is not empty" % where)

        # The live memory after the scan: file and sidecar passwords are wiped after use.
        # An env: password is kept (every scan needs it) and is looked for in cores below.
        in_mem = find_in_memory(d.proc.pid, {k: v for k, v in needles.items()
                                             if not k.startswith("env")})
        check(not in_mem, "after the scan, the process memory holds none of: %s" % sorted(in_mem))

        if is_sanitized(KIGEND):
            # gcore and the kernel would dump AddressSanitizer's terabytes of reserved memory:
            # the core checks run with the plain build (make check runs both).
            print("NOTE: core dump checks not run: %s is built with AddressSanitizer" % KIGEND)
            return
        core = os.path.join(top, "gcore")
        p = subprocess.run(["gcore", "-o", core, str(d.proc.pid)], capture_output=True,
                           timeout=120)
        core = "%s.%d" % (core, d.proc.pid)
        if check(p.returncode == 0 and os.path.exists(core), "gcore wrote a core: %s"
                 % p.stderr[-300:]):
            hits = find_in_file(core, needles)
            check(not hits, "the gcore dump holds no secret: %s" % sorted(hits))
            os.unlink(core)
        d.stop()

        # A core the kernel writes on SIGABRT (core_pattern is the machine's: not changed).
        with open("/proc/sys/kernel/core_pattern") as f:
            pattern = f.read().strip()
        if check(not pattern.startswith("|") and "/" not in pattern,
                 "kernel.core_pattern %r writes cores into the process's directory (the "
                 "SIGABRT core check needs that; it is left as it is)" % pattern):
            cwd = os.path.join(top, "cwd")
            os.makedirs(cwd)
            env = dict(os.environ, NOTIFY_SOCKET=d.notify.path, NACCS_CANARY_PASS=canary["env"],
                       ASAN_OPTIONS="disable_coredump=0:" + os.environ.get("ASAN_OPTIONS", ""))
            log = open(os.path.join(top, "abrt.log"), "wb")
            proc = subprocess.Popen(
                mnt.enter(cwd) + [KIGEND, "--config", d.config, "--now", NOW], cwd=cwd, env=env,
                stdout=log, stderr=log,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE,
                                                      (resource.RLIM_INFINITY,) * 2))
            check(d.notify.wait_for(lambda m: "READY=1" in m, 30), "READY=1 again")
            time.sleep(1)
            proc.send_signal(signal.SIGABRT)
            proc.wait(60)
            log.close()
            cores = [os.path.join(cwd, c) for c in os.listdir(cwd) if c.startswith(pattern)]
            if check(proc.returncode == -signal.SIGABRT and cores,
                     "SIGABRT leaves a core in %s: %s %s"
                     % (cwd, proc.returncode, os.listdir(cwd))):
                hits = find_in_file(cores[0], needles)
                check(not hits, "the kernel's core dump holds no secret: %s" % sorted(hits))
    finally:
        d.close()
        journal.close()
        mnt.close()
        shutil.rmtree(top, ignore_errors=True)


CASES = {
    "socket_access": case_socket_access,
    "hostile_requests": case_hostile_requests,
    "socket_symlink": case_socket_symlink,
    "keystore_links": case_keystore_links,
    "symlink_race": case_symlink_race,
    "symlink_race_dirs": lambda: case_symlink_race(swap_dirs=True),
    "secrets": case_secrets,
}

# Cases that show a bug still open (RELIABILITY.md, "Open"): run only when named, and never
# counted as passed. None at present.
OPEN_CASES = {}


def main():
    if os.geteuid() != 0:
        print("test_security needs root (other uids, strace, /proc/PID/mem)")
        sys.exit(1)
    need("setpriv", "strace", "gcore", "openssl", "unshare", "nsenter")
    for name in sys.argv[1:] or list(CASES):
        t0 = time.time()
        (CASES.get(name) or OPEN_CASES[name])()
        print("case %s: %.1f s" % (name, time.time() - t0), flush=True)
    if not sys.argv[1:] and OPEN_CASES:
        print("open bugs, not run by default: %s" % ", ".join(OPEN_CASES))
    finish("test_security", cases)


if __name__ == "__main__":
    main()
