"""Helpers for the end-to-end tests that run the real daemon.

Everything is real: the kigend binary, a Unix datagram socket bound by the test as the
daemon's syslog and NOTIFY_SOCKET, and files made by openssl at test time. The clock is set
with `kigend --now`, which starts the daemon's clock at a given instant and lets it run at
real speed (libfaketime deadlocks under AddressSanitizer).
"""
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from kigensock import free_port  # noqa: F401 (the tests import it from here)

KIGEND = os.environ["KIGEND"]
FIX = os.environ["KIGEN_FIXTURES"]

# kigenctl and kigend --once --format table speak the user's language (LANG, LC_MESSAGES,
# LANGUAGE): the tests expect English unless a case asks for Japanese itself, whatever the
# environment of the person or CI that runs them.
os.environ["LANG"] = "C.UTF-8"
for _name in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
    os.environ.pop(_name, None)
CERTS = os.path.join(FIX, "certs")

failures = []

# Runs a command as uid and gid 65534 without supplementary groups (another user).
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def need(*tools):
    """A missing tool fails the test with a clear message, never skips it."""
    for t in tools:
        if not (os.path.isabs(t) and os.access(t, os.X_OK)) and not shutil.which(t):
            print("FAIL: %s needs %s, which is missing" % (os.path.basename(sys.argv[0]), t))
            sys.exit(1)


def wait_until(pred, timeout, step=0.05):
    """pred()'s first true value within timeout seconds, else its last."""
    end = time.time() + timeout
    while True:
        v = pred()
        if v or time.time() >= end:
            return v
        time.sleep(step)


def scratch(name, mode=0o755):
    """A new directory under /tmp that other users may enter (mode)."""
    d = tempfile.mkdtemp(prefix="kigen-%s-" % name)
    os.chmod(d, mode)
    return d


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


def finish(name, n_cases):
    if failures:
        print("%s: %d passed, %d failed" % (name, max(0, n_cases - len(failures)), len(failures)))
        raise SystemExit(1)
    print("%d passed, 0 failed" % n_cases)


class Dgram:
    """A Unix datagram socket the daemon writes to (syslog, sd_notify)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []

    def read(self, timeout=0.0):
        end = time.time() + timeout
        while True:
            left = end - time.time()
            self.sock.settimeout(max(left, 0.001))
            try:
                data = self.sock.recv(1 << 20)
                self.messages.append(data.decode("utf-8", "replace"))
            except (socket.timeout, BlockingIOError):
                if time.time() >= end:
                    return self.messages

    def wait_for(self, pred, timeout):
        end = time.time() + timeout
        while time.time() < end:
            self.read(0.05)
            hits = [m for m in self.messages if pred(m)]
            if hits:
                return hits
        return []

    def close(self):
        self.sock.close()


SD_RE = re.compile(r'(\w+)="((?:[^"\\\]]|\\.)*)"')


def parse_syslog(msg):
    """An RFC 5424 message: (msgid, structured data as a dict, message)."""
    m = re.match(r"<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?[^\\]\]) ?(.*)$", msg, re.S)
    if not m:
        return None
    sd = {k: re.sub(r"\\(.)", r"\1", v) for k, v in SD_RE.findall(m.group(7))}
    return {"pri": int(m.group(1)), "msgid": m.group(6), "sd": sd, "msg": m.group(8)}


class Daemon:
    """One kigend process in a scratch directory with its own config, syslog and notify socket."""

    def __init__(self, name, keystores, extra="", now=None, journald=False):
        self.dir = tempfile.mkdtemp(prefix="kigen-%s-" % name)
        self.state = os.path.join(self.dir, "state")
        self.syslog = Dgram(os.path.join(self.dir, "syslog.sock"))
        self.notify = Dgram(os.path.join(self.dir, "notify.sock"))
        self.config = os.path.join(self.dir, "kigen.yaml")
        self.now = now
        self.journald = journald
        self.proc = None
        self.write_config(keystores, extra)

    def write_config(self, keystores, extra=""):
        ks = "".join("  - { name: %s, path: %s%s }\n" % (k[0], k[1], ", " + k[2] if len(k) > 2 else "")
                     for k in keystores)
        with open(self.config, "w") as f:
            f.write("state_dir: %s\nscan_interval: 1h\ntimezone: UTC\nkeystores:\n%s"
                    "probes: { targets: [] }\nalerts:\n  journald: %s\n  syslog: %s\n%s"
                    % (self.state, ks, "true" if self.journald else "false",
                       self.syslog.path, extra))

    def open_to(self, uid):
        """Lets the daemon run as uid: its state directory, config and sockets."""
        os.makedirs(self.state, exist_ok=True)
        os.chown(self.state, uid, uid)
        os.chmod(self.dir, 0o755)
        os.chmod(self.config, 0o644)
        for s in (self.syslog.path, self.notify.path):
            os.chmod(s, 0o777)

    def start(self, env=None, prefix=()):
        e = dict(os.environ, NOTIFY_SOCKET=self.notify.path)
        e.update(env or {})
        now = ["--now", self.now] if self.now else []
        self.log = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.proc = subprocess.Popen(list(prefix) + [KIGEND, "--config", self.config] + now,
                                     stdout=self.log, stderr=self.log, env=e)
        # Generous: a loaded machine under ASan may take long; a failure is what waits.
        return self.notify.wait_for(lambda m: "READY=1" in m, 120)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        if self.proc:
            self.log.close()
        self.proc = None
        return rc

    def stderr(self):
        with open(os.path.join(self.dir, "stderr.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def alerts(self, timeout=0.0):
        """Every alert received on syslog so far, parsed."""
        self.syslog.read(timeout)
        return [a for a in (parse_syslog(m) for m in self.syslog.messages) if a]

    def wait_alert(self, pred, timeout):
        end = time.time() + timeout
        while time.time() < end:
            hits = [a for a in self.alerts(0.05) if pred(a)]
            if hits:
                return hits
        return []

    def close(self):
        self.stop()
        self.syslog.close()
        self.notify.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def cert(name):
    """The path of a certificate file made by tests/gen/gen_certs.sh."""
    return os.path.join(CERTS, name)


def fact(leaf, key):
    with open(os.path.join(CERTS, leaf + ".facts")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition(" ")
            if k == key:
                return v
    raise KeyError(key)


JOURNAL_SOCKET = "/run/systemd/journal/socket"


class Journald:
    """The system's journald, or one started for the test (it runs standalone as root)."""

    def __init__(self):
        self.proc = None
        self.made = []
        if self._listening():
            return
        for d in ("/run/systemd/journal", "/run/log/journal"):
            if not os.path.exists(d):
                self.made.append(d)
        binary = next(b for b in ("/lib/systemd/systemd-journald",
                                  "/usr/lib/systemd/systemd-journald") if os.path.exists(b))
        self.proc = subprocess.Popen([binary], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.time() + 10
        while not self._listening():
            if time.time() > end or self.proc.poll() is not None:
                raise RuntimeError("systemd-journald did not start")
            time.sleep(0.05)

    @staticmethod
    def _listening():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.connect(JOURNAL_SOCKET)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def entries(self, **match):
        """Entries read back with journalctl -o json, filtered by FIELD=value."""
        args = ["journalctl", "-o", "json", "--no-pager"] + ["%s=%s" % kv for kv in match.items()]
        out = subprocess.run(args, capture_output=True).stdout.decode("utf-8", "replace")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
            for d in self.made:
                shutil.rmtree(d, ignore_errors=True)


def die_with_parent():
    """In a child before exec: SIGKILL when the test dies, whatever killed it."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class PrivateMount:
    """A tmpfs mounted in a mount namespace of its own, held open by a sleeping process.

    The machine's mount table never sees it; it goes when the holder is killed. The daemon
    runs in that namespace (nsenter); the test reaches the files through /proc/HOLDER/root.
    """

    def __init__(self, mountpoint, size="256k", setup=""):
        need("unshare", "nsenter", "mount")
        self.mountpoint = mountpoint
        os.makedirs(mountpoint, exist_ok=True)
        script = ('mount -t tmpfs -o size=%s,mode=0755 kigen-test "$0" && %s echo mounted && '
                  'exec sleep 100000' % (size, setup))
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                      script, mountpoint], stdout=subprocess.PIPE,
                                     preexec_fn=die_with_parent)
        line = self.proc.stdout.readline()
        if line.strip() != b"mounted":
            self.close()
            raise RuntimeError("cannot mount a private tmpfs on %s" % mountpoint)
        self.root = "/proc/%d/root" % self.proc.pid

    def path(self, *parts):
        """The host's path to a file in the private mount (through /proc/PID/root)."""
        return os.path.join(self.root + self.mountpoint, *parts)

    def enter(self, cwd=None):
        """The prefix that runs a command in the namespace (in cwd: entering a mount namespace
        would otherwise move it to /)."""
        return ["nsenter", "-t", str(self.proc.pid), "-m", "--wd=" + (cwd or os.getcwd()), "--"]

    def remount(self, opts):
        subprocess.run(self.enter() + ["mount", "-o", "remount," + opts, self.mountpoint],
                       check=True)

    def fill(self, name="filler"):
        """Fills the file system to the last byte."""
        with open(self.path(name), "wb", buffering=0) as f:
            for chunk in (65536, 4096, 1):
                try:
                    while True:
                        f.write(b"\0" * chunk)
                except OSError:
                    pass

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
