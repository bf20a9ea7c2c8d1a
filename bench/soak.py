#!/usr/bin/env python3
"""The soak of issue #8, never part of the tests: kigend for 10 minutes under churn.

Two daemons watch the same keystore tree side by side: one built with AddressSanitizer and
LeakSanitizer (ASAN_OPTIONS=detect_leaks=1: any leak is reported when it exits), one plain
build whose RSS is the figure that matters (ASan's quarantine and shadow would hide a trend).
Meanwhile, for the whole run:

  - files are added, replaced and removed continuously (every certificate is a fresh one made
    by bench/mkcorpus: none comes back, so every alert is due exactly once);
  - clients ask status, list, show, metrics and probes, send malformed lines and hang up in
    the middle of large answers;
  - a SIGHUP every 3 s; every fourth reload changes the configuration, every tenth one is a
    broken configuration (rejected), put right at the next;
  - an exec hook runs for every alert, a textfile is rewritten, a PKCS#12 file or two are
    read with a password file.

RSS is sampled every 10 s. At the end: a last scan, SIGTERM, and the verdicts: no leak or
sanitizer report, the exit status, RSS bounded (minimum, maximum and the slope after the
first minute), and every certificate alert delivered exactly once (SPEC §7: once per
certificate and step; the design's at-least-once window only opens on a crash, and nothing
crashes here) and none missing for the certificates that end in an alerting state.

Usage: bench/soak.py [--asan BUILD] [--plain BUILD] [--minutes 10] [--certs 3000]
       (defaults: build-rel-asan and build-rel; either may be "none"; --valgrind runs the
        plain build under valgrind's memcheck instead, much slower)
"""
import argparse
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from kigensock import request  # noqa: E402
SYSLOG_RE = re.compile(r"<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?[^\\]\]) ?(.*)$", re.S)
SD_RE = re.compile(r'(\w+)="((?:[^"\\\]]|\\.)*)"')
STEP_RE = re.compile(r"notice at (\S+) before")
ALERTING = {"expired": "cert.expired", "critical": "cert.critical",
            "renewal_open": "cert.renewal_open"}


def parse_syslog(msg):
    m = SYSLOG_RE.match(msg)
    if not m:
        return None
    sd = {k: re.sub(r"\\(.)", r"\1", v) for k, v in SD_RE.findall(m.group(7))}
    return m.group(6), sd, m.group(8)


class Dgram:
    """A Unix datagram socket read by a thread of its own; every message is kept."""

    def __init__(self, path, keep=True):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(path)
        os.chmod(path, 0o777)
        self.sock.settimeout(0.2)
        self.keep = keep
        self.messages = []
        self.lock = threading.Lock()
        self.last = time.time()
        self.stop_ = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_:
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                return
            self.last = time.time()
            if self.keep:
                with self.lock:
                    self.messages.append(data.decode("utf-8", "replace"))

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def close(self):
        self.stop_ = True
        self.thread.join()
        self.sock.close()


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            text = f.read()
    except OSError:
        return None
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1))


def pctl(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * q))] if v else float("nan")


def slope_per_min(samples):
    """Least-squares slope of (t s, kib) samples, in KiB per minute."""
    if len(samples) < 3:
        return 0.0
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    return 60 * sum((t - mt) * (v - mv) for t, v in samples) / var if var else 0.0


class Kigend:
    """One daemon in a scratch directory: config, socket, syslog, notify, state."""

    def __init__(self, name, binary, ks, pass_file, prefix=(), env=None):
        self.name = name
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="kigen-soak-%s-" % name)
        self.sock = os.path.join(self.dir, "kigen.sock")
        self.syslog = Dgram(os.path.join(self.dir, "syslog.sock"))
        self.notify = Dgram(os.path.join(self.dir, "notify.sock"), keep=False)
        self.config = os.path.join(self.dir, "kigen.yaml")
        self.ks = ks
        self.pass_file = pass_file
        self.prefix = list(prefix)
        self.env = env or {}
        self.proc = None
        self.rss = []  # (seconds since start, KiB)
        self.variant = 0
        self.write_config()

    def write_config(self, broken=False):
        v = self.variant
        text = ("socket: %s\nstate_dir: %s/state\nscan_interval: %s\ntimezone: %s\n"
                "keystores:\n"
                "  - name: soak\n    path: %s\n    recursive: true\n"
                "    passwords: [ { file: %s } ]\n    labels: { team: soak, variant: v%d }\n"
                "rules:\n  - match: { subject: \"*user-%d*\" }\n    renew_before: %dd\n"
                "probes: { targets: [] }\n"
                "alerts:\n  journald: false\n  syslog: %s\n  exec: \"true\"\n"
                "  textfile: %s/kigen.prom\n"
                % (self.sock, self.dir, "1m" if v % 2 else "90s",
                   "Asia/Tokyo" if v % 2 else "UTC", self.ks, self.pass_file, v, v % 10,
                   28 + v % 3, self.syslog.path, self.dir))
        if broken:
            text += "bogus_key: %d\n" % v
        with open(self.config + ".tmp", "w") as f:
            f.write(text)
        os.rename(self.config + ".tmp", self.config)

    def start(self):
        env = dict(os.environ, NOTIFY_SOCKET=self.notify.path, **self.env)
        self.log = open(os.path.join(self.dir, "stderr.log"), "wb")
        self.proc = subprocess.Popen(self.prefix + [self.binary, "--config", self.config],
                                     stdout=self.log, stderr=self.log, env=env)
        self.t0 = time.time()
        end = time.time() + 600
        while time.time() < end:
            try:
                a = request(self.sock, {"cmd": "status"}, 10)
                if a and a.get("ok") and a.get("scans", 0) >= 1 and not a.get("scanning"):
                    return True
            except OSError:
                pass
            if self.proc.poll() is not None:
                return False
            time.sleep(0.2)
        return False

    def sample(self):
        if self.proc and self.proc.poll() is None:
            v = rss_kib(self.proc.pid)
            if v:
                self.rss.append((time.time() - self.t0, v))

    def stop(self, timeout=120):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            self.log.close()
        return self.proc.returncode

    def stderr(self):
        with open(os.path.join(self.dir, "stderr.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def alerts(self):
        out = []
        for m in self.syslog.snapshot():
            a = parse_syslog(m)
            if a:
                out.append(a)
        return out

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.syslog.close()
        self.notify.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def corpus(mk, dest, n, n_p12=0, profile=None):
    """mkcorpus, once: n fresh certificates (and n_p12 PKCS#12 files) in dest."""
    if os.path.exists(dest + ".done"):
        return
    shutil.rmtree(dest, ignore_errors=True)
    env = dict(os.environ, KIGEN_CORPUS=profile) if profile else None
    subprocess.run([mk, dest, str(n), str(n_p12)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    open(dest + ".done", "w").close()


class Churn:
    """Adds, replaces and removes files; a certificate never comes back once gone."""

    def __init__(self, ks, pool, rnd):
        self.ks = ks
        self.pool = sorted(os.path.join(pool, f) for f in os.listdir(pool))
        rnd.shuffle(self.pool)
        self.rnd = rnd
        self.files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(ks) for f in fs
                            if not f.endswith(".p12"))
        self.dirs = sorted({os.path.dirname(f) for f in self.files})
        self.counts = collections.Counter()
        self.n = 0

    def fresh(self):
        if not self.pool:
            return None
        return self.pool.pop()

    def step(self, adds=1, changes=2, removes=1):
        """One round; as many files come as go, so that RSS may stay flat."""
        for _ in range(adds):
            src = self.fresh()
            if not src:
                return False
            self.n += 1
            dst = os.path.join(self.rnd.choice(self.dirs), "new%06d%s" % (self.n, src[-4:]))
            os.rename(src, dst)
            self.files.append(dst)
            self.counts["added"] += 1
        for _ in range(changes):
            src = self.fresh()
            if not src or not self.files:
                return False
            dst = self.rnd.choice(self.files)
            # Same extension: PEM stays PEM and DER stays DER (content decides anyway).
            os.rename(src, dst)
            self.counts["replaced"] += 1
        for _ in range(removes):
            if len(self.files) > 100:
                victim = self.files.pop(self.rnd.randrange(len(self.files)))
                os.unlink(victim)
                self.counts["removed"] += 1
        return True


def client_loop(d, stop, stats, rnd):
    """Status, list, show, metrics, probes, malformed lines, hang-ups, over and over."""
    shas = []
    while not stop.is_set():
        try:
            t0 = time.monotonic()
            a = request(d.sock, {"cmd": "status"})
            stats["status_ms"].append(1000 * (time.monotonic() - t0))
            if not a or not a.get("ok"):
                stats["errors"].append("status %r" % a)
            k = rnd.random()
            if k < 0.15:
                a = request(d.sock, {"cmd": "list"}, 120)
                if a and "certificates" in a:
                    shas = [c["sha256"] for c in a["certificates"]]
                    stats["list"] += 1
                else:
                    stats["errors"].append("list %r" % str(a)[:200])
            elif k < 0.45 and shas:
                a = request(d.sock, {"cmd": "show", "sha256": rnd.choice(shas)})
                stats["show"] += 1
                if not a or ("ok" in a and not a["ok"] and "unknown" not in a.get("error", "")):
                    stats["errors"].append("show %r" % a)
            elif k < 0.6:
                a = request(d.sock, {"cmd": "metrics"}, 120)
                stats["metrics"] += 1
                if not a or not a.get("ok"):
                    stats["errors"].append("metrics %r" % str(a)[:200])
            elif k < 0.7:
                request(d.sock, {"cmd": "probes"})
            elif k < 0.8:
                a = request(d.sock, rnd.choice([b"{\"cmd\":\n", b"[1]\n", b"\x00\xff\n",
                                                b"{\"cmd\":\"show\",\"sha256\":\"zz\"}\n"]))
                if not a or a.get("ok") is not False:
                    stats["errors"].append("malformed %r" % a)
            elif k < 0.85:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(d.sock)
                s.sendall(b'{"cmd":"list"}\n')
                s.recv(4096)
                s.close()  # gone mid-answer
                stats["hangups"] += 1
        except (OSError, ValueError) as e:
            if d.proc.poll() is not None:
                return
            stats["errors"].append("socket %r" % e)
        time.sleep(0.02)


def verdict_alerts(d, final):
    """(duplicates, missing, counts) of certificate alerts."""
    keys = collections.Counter()
    events = collections.Counter()
    for msgid, sd, msg in d.alerts():
        events[msgid] += 1
        if not msgid.startswith("cert."):
            continue
        step = STEP_RE.search(msg)
        keys[(sd.get("sha256"), msgid, step.group(1) if step else "")] += 1
    dups = [(k, n) for k, n in keys.items() if n > 1]
    sent = {(s, e) for s, e, _ in keys}
    missing = [(c["sha256"], ALERTING[c["state"]]) for c in final["certificates"]
               if c["state"] in ALERTING and (c["sha256"], ALERTING[c["state"]]) not in sent]
    return dups, missing, events


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--asan", default=os.path.join(ROOT, "build-rel-asan"))
    ap.add_argument("--plain", default=os.path.join(ROOT, "build-rel"))
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--certs", type=int, default=3000)
    ap.add_argument("--valgrind", action="store_true")
    args = ap.parse_args()
    mk = None
    for b in (args.plain, args.asan):
        if b != "none" and os.access(os.path.join(b, "bench", "mkcorpus"), os.X_OK):
            mk = os.path.join(b, "bench", "mkcorpus")
    if not mk:
        sys.exit("soak: no bench/mkcorpus in the build directories given")
    if args.valgrind and not shutil.which("valgrind"):
        sys.exit("soak: --valgrind needs valgrind (apt-get install valgrind)")
    seconds = args.minutes * 60
    out = os.path.join(HERE, "out", "soak")
    os.makedirs(out, exist_ok=True)
    n_pool = int(seconds / 0.5 * 3) + 500
    print("making %d + %d certificates..." % (args.certs, n_pool), flush=True)
    corpus(mk, os.path.join(out, "base-%d" % args.certs), args.certs, 20)
    corpus(mk, os.path.join(out, "pool-%d" % n_pool), n_pool)
    work = tempfile.mkdtemp(prefix="kigen-soak-")
    ks, pool = os.path.join(work, "ks"), os.path.join(work, "pool")
    base = os.path.join(out, "base-%d" % args.certs)
    for i, name in enumerate(sorted(os.listdir(base))):
        d = os.path.join(ks, "d%02d" % (i % 20))
        os.makedirs(d, exist_ok=True)
        shutil.copy(os.path.join(base, name), d)
    shutil.copytree(os.path.join(out, "pool-%d" % n_pool), pool)
    pass_file = os.path.join(work, "bench.pass")
    with open(pass_file, "w") as f:
        f.write("bench-pass\n")
    os.chmod(work, 0o755)

    daemons = []
    if args.asan != "none":
        daemons.append(Kigend("asan", os.path.join(args.asan, "kigend"), ks, pass_file,
                              env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
                                   "LSAN_OPTIONS": "report_objects=1"}))
    if args.plain != "none":
        prefix = ["valgrind", "--leak-check=full", "--show-leak-kinds=definite,indirect",
                  "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=42",
                  "--log-file=%s/valgrind.log" % work] if args.valgrind else []
        daemons.append(Kigend("valgrind" if args.valgrind else "plain",
                              os.path.join(args.plain, "kigend"), ks, pass_file, prefix=prefix))
    rnd = random.Random(8)
    stop = threading.Event()
    stats = {d.name: {"status_ms": [], "errors": [], "list": 0, "show": 0, "metrics": 0,
                      "hangups": 0} for d in daemons}
    threads = []
    try:
        for d in daemons:
            if not d.start():
                sys.exit("soak: %s did not come up: %s" % (d.name, d.stderr()[-2000:]))
            print("%s: up (pid %d), RSS %d KiB" % (d.name, d.proc.pid, rss_kib(d.proc.pid)),
                  flush=True)
        churn = Churn(ks, pool, rnd)
        for d in daemons:
            t = threading.Thread(target=client_loop, args=(d, stop, stats[d.name],
                                                           random.Random(d.name)))
            t.start()
            threads.append(t)
        t_start = time.time()
        next_hup, next_sample, reloads = t_start + 3, t_start, 0
        print("soak: %.0f minutes, %d daemons; RSS every 10 s (KiB): %s"
              % (args.minutes, len(daemons), " ".join(d.name for d in daemons)), flush=True)
        while time.time() - t_start < seconds:
            now = time.time()
            if now >= next_sample:
                for d in daemons:
                    d.sample()
                print("  %4.0f s  %s  files %d  churn %s" % (
                    now - t_start, "  ".join("%s %d" % (d.name, d.rss[-1][1]) for d in daemons
                                             if d.rss), len(churn.files), dict(churn.counts)),
                    flush=True)
                next_sample += 10
            if now >= next_hup:
                reloads += 1
                for d in daemons:
                    if reloads % 10 == 0:
                        d.write_config(broken=True)
                    elif reloads % 4 == 0 or reloads % 10 == 1:
                        d.variant += 1
                        d.write_config()
                    d.proc.send_signal(signal.SIGHUP)
                next_hup += 3
            if not churn.step():
                print("soak: the pool of fresh certificates ran out", flush=True)
                break
            for d in daemons:
                if d.proc.poll() is not None:
                    raise SystemExit("soak: %s died (%s): %s"
                                     % (d.name, d.proc.returncode, d.stderr()[-3000:]))
            time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        # Quiet: a working configuration, a last full scan, alerts drained.
        finals = {}
        for d in daemons:
            d.write_config()
            d.proc.send_signal(signal.SIGHUP)
        for d in daemons:
            end = time.time() + 300
            while time.time() < end:
                a = request(d.sock, {"cmd": "status"})
                if a and not a["scanning"] and time.time() - d.syslog.last > 5:
                    break
                time.sleep(1)
            request(d.sock, {"cmd": "rescan"})
            time.sleep(3)
            while request(d.sock, {"cmd": "status"})["scanning"] or \
                    time.time() - d.syslog.last < 5:
                time.sleep(1)
            finals[d.name] = request(d.sock, {"cmd": "list"}, 300)
            d.sample()
        print()
        print("Soak of %.1f minutes: %s files changed (%s), %d SIGHUPs"
              % ((time.time() - t_start) / 60, sum(churn.counts.values()), dict(churn.counts),
                 reloads))
        ok = True
        for d in daemons:
            rc = d.stop()
            err = d.stderr()
            st = stats[d.name]
            leaks = len(re.findall(r"ERROR: LeakSanitizer", err))
            asan = len(re.findall(r"ERROR: AddressSanitizer|runtime error:", err))
            dups, missing, events = verdict_alerts(d, finals[d.name])
            after = [(t, v) for t, v in d.rss if t >= 60]
            vals = [v for _, v in d.rss]
            print()
            print("%s (%s)" % (d.name, d.binary))
            print("  exit status %s; LeakSanitizer reports %d; other sanitizer reports %d"
                  % (rc, leaks, asan))
            if args.valgrind and d.name == "valgrind":
                vg = open(os.path.join(work, "valgrind.log")).read()
                m = re.search(r"definitely lost: ([\d,]+) bytes", vg)
                print("  valgrind: definitely lost %s bytes" % (m.group(1) if m else "0"))
            print("  RSS KiB: first %d, min %d, max %d, last %d; after the first minute: "
                  "min %d, max %d, slope %+.0f KiB/min over %d samples"
                  % (vals[0], min(vals), max(vals), vals[-1], min(v for _, v in after),
                     max(v for _, v in after), slope_per_min(after), len(after)))
            print("  socket: %d status (p50 %.1f, p99 %.1f, max %.1f ms), %d list, %d show, "
                  "%d metrics, %d hang-ups, %d errors%s"
                  % (len(st["status_ms"]), pctl(st["status_ms"], 0.5), pctl(st["status_ms"], 0.99),
                     max(st["status_ms"]), st["list"], st["show"], st["metrics"], st["hangups"],
                     len(st["errors"]), (": %s" % st["errors"][:3]) if st["errors"] else ""))
            print("  alerts: %s" % dict(sorted(events.items())))
            print("  certificate alerts sent twice: %d%s; due and never sent: %d%s"
                  % (len(dups), (" e.g. %s" % dups[:3]) if dups else "", len(missing),
                     (" e.g. %s" % missing[:3]) if missing else ""))
            print("  final inventory: %d certificates, %d errors"
                  % (len(finals[d.name]["certificates"]), len(finals[d.name]["errors"])))
            if leaks:
                print("  " + "\n  ".join(err[err.index("ERROR: LeakSanitizer"):].splitlines()[:40]))
            ok = ok and rc == 0 and not leaks and not asan and not dups and not missing and \
                not st["errors"]
        print()
        print("soak: %s" % ("PASS" if ok else "FAIL"))
        return 0 if ok else 1
    finally:
        stop.set()
        for d in daemons:
            d.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
