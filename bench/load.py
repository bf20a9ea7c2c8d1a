#!/usr/bin/env python3
"""Load (issue #8), never part of the tests.

  A. 1,000 concurrent clients on the status socket, each asking status at the same moment;
     then build/bench/statusload (one epoll thread in C) with as many clients as the daemon
     accepts, for the latency the daemon itself gives.
  B. 100,000 certificates with 1,000 files changing per minute for an hour, compressed ten
     times: 1,000 files replaced every 6 s (one every 6 ms) for 5 minutes, 50,000 changes.
     Meanwhile statusload keeps 10 clients asking status (30-second windows: count, p50,
     p99, max), RSS is sampled every 10 s, and every alert is read back from syslog:
     each certificate alert must come exactly once, every certificate that ends in an
     alerting state must have had its alert, and every alerted certificate that was
     replaced must have had exactly one cert.gone.

The 100,000 certificates are a kept NACCS-like estate (KIGEN_CORPUS=naccs: about 1.5% in
their renewal window, none expired); the replacements are fresh certificates whose dates
spread over ten years (about half expired), so the churn produces a steady stream of alerts.
With --steady the estate has that spread too: the number of certificates the engine has
alerted about (and remembers) then stays level, and so must RSS.

The daemon's configuration has the exec hook off (50,000 changes would measure fork) and,
as the soak's, a Prometheus textfile; --no-textfile leaves that out too.

Usage: bench/load.py BUILD_DIR [--minutes 5] [--only clients|churn] [--steady] [--no-textfile]
"""
import argparse
import collections
import os
import random
import re
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from soak import (ALERTING, STEP_RE, Kigend, corpus, pctl, request, rss_kib,  # noqa: E402
                  slope_per_min)

HERE = os.path.dirname(os.path.abspath(__file__))


def many_clients(sock, n, timeout=30):
    """n connections at once, each sends status when all are open; their fates."""
    sel = selectors.DefaultSelector()
    conns = []
    fates = collections.Counter()
    lat = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sock)
        except OSError as e:
            fates["connect: %s" % e.strerror] += 1
            s.close()
            continue
        s.setblocking(False)
        conns.append(s)
    t0 = time.monotonic()
    for s in conns:
        try:
            s.send(b'{"cmd":"status"}\n')
        except OSError:
            pass
        sel.register(s, selectors.EVENT_READ, [bytearray(), time.monotonic()])
    left = len(conns)
    end = time.monotonic() + timeout
    while left and time.monotonic() < end:
        for key, _ in sel.select(0.5):
            buf, sent = key.data
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            if data:
                buf += data
                if not buf.endswith(b"\n"):
                    continue
                if b'"ok":true' in buf:
                    fates["answered"] += 1
                    lat.append(1000 * (time.monotonic() - sent))
                elif b"too many clients" in buf:
                    fates["told: too many clients"] += 1
                else:
                    fates["other answer"] += 1
            else:
                fates["closed without answer"] += 1
            sel.unregister(key.fileobj)
            key.fileobj.close()
            left -= 1
    for key in list(sel.get_map().values()):
        fates["no answer in %d s" % timeout] += 1
        key.fileobj.close()
    return fates, lat, 1000 * (time.monotonic() - t0)


def statusload(build, sock, clients, seconds):
    p = subprocess.run([os.path.join(build, "bench", "statusload"), sock, str(clients),
                        str(seconds)], capture_output=True, text=True, timeout=seconds + 60)
    if p.returncode != 0:
        return None, p.stderr.strip() or "statusload ended with status %d" % p.returncode
    count, p50, p99, mx = p.stdout.split()
    return (int(count), float(p50), float(p99), float(mx)), ""


def part_clients(build, d):
    print()
    print("A. 1,000 clients at once (the daemon's limit is KIGEN_CONTROL_MAX_CLIENTS = 1,024, "
          "with no configuration key)")
    for rnd in range(3):
        fates, lat, took = many_clients(d.sock, 1000)
        print("   round %d: %s; answered p50 %.1f ms, p99 %.1f ms, max %.1f ms; all settled "
              "in %.0f ms" % (rnd + 1, dict(fates), pctl(lat, 0.5), pctl(lat, 0.99),
                              max(lat) if lat else float("nan"), took), flush=True)
    for n in (1000, 100, 10):
        r, err = statusload(build, d.sock, n, 10)
        if r:
            print("   statusload %3d clients, 10 s: %d answers, p50 %.2f ms, p99 %.2f ms, "
                  "max %.2f ms" % ((n,) + r), flush=True)
        else:
            print("   statusload %d clients: %s" % (n, err))
    r, err = statusload(build, d.sock, 1025, 5)
    print("   statusload 1025 clients: %s (the 1025th is told \"too many clients\" and closed)"
          % (err or r))
    print("   daemon alive: %s, RSS %d KiB" % (d.proc.poll() is None, rss_kib(d.proc.pid)))


def part_churn(build, d, ks, pool, minutes):
    files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(ks) for f in fs)
    fresh = sorted(os.path.join(pool, f) for f in os.listdir(pool))
    rnd = random.Random(8)
    rnd.shuffle(fresh)
    rounds = int(minutes * 60 / 6)
    print()
    print("B. %d certificates; 1,000 files replaced every 6 s for %.0f minutes (%d changes); "
          "statusload 10 clients in 30 s windows" % (len(files), minutes, rounds * 1000))
    stop = threading.Event()
    windows = []

    def load():
        while not stop.is_set():
            r, err = statusload(build, d.sock, 10, 30)
            windows.append(r or err)
            if r:
                print("   status: %d answers, p50 %.2f ms, p99 %.2f ms, max %.2f ms"
                      % r, flush=True)
            else:
                print("   statusload: %s" % err, flush=True)

    t = threading.Thread(target=load)
    t.start()
    t0 = time.time()
    d.rss = []
    next_sample = t0
    replaced = 0
    for r in range(rounds):
        round_end = t0 + (r + 1) * 6
        for i in range(1000):
            dst = files[rnd.randrange(len(files))]
            os.rename(fresh.pop(), dst)
            replaced += 1
            due = round_end - 6 + (i + 1) * 0.006
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            if time.time() >= next_sample:
                d.sample()
                next_sample += 10
        if d.proc.poll() is not None:
            stop.set()
            t.join()
            raise SystemExit("load: the daemon died: %s" % d.stderr()[-3000:])
    stop.set()
    t.join()
    took = time.time() - t0
    # Quiet: the changes read, the alerts out.
    end = time.time() + 300
    while time.time() < end:
        a = request(d.sock, {"cmd": "status"})
        if a and not a["scanning"] and time.time() - d.syslog.last > 5:
            break
        time.sleep(1)
    final = request(d.sock, {"cmd": "list"}, 300)
    d.sample()
    good = [w for w in windows if isinstance(w, tuple)]
    p99s = [w[2] for w in good]
    vals = [v for _, v in d.rss]
    print("   %d files replaced in %.0f s" % (replaced, took))
    print("   status p99 per 30 s window: %s ms; worst p99 %.2f ms, worst max %.2f ms; "
          "%d answers in all" % (" ".join("%.2f" % p for p in p99s), max(p99s),
                                 max(w[3] for w in good), sum(w[0] for w in good)))
    print("   RSS KiB every 10 s: %s" % " ".join(str(v) for v in vals))
    print("   RSS min %d, max %d KiB, slope %+.0f KiB/min"
          % (min(vals), max(vals), slope_per_min(d.rss)))
    # Exactly once.
    keys = collections.Counter()
    alerted = set()
    gone = collections.Counter()
    events = collections.Counter()
    for msgid, sd, msg in d.alerts():
        events[msgid] += 1
        if not msgid.startswith("cert."):
            continue
        step = STEP_RE.search(msg)
        keys[(sd.get("sha256"), msgid, step.group(1) if step else "")] += 1
        if msgid == "cert.gone":
            gone[sd.get("sha256")] += 1
        else:
            alerted.add(sd.get("sha256"))
    dups = [(k, n) for k, n in keys.items() if n > 1]
    sent = {(s, e) for s, e, _ in keys}
    present = {c["sha256"] for c in final["certificates"]}
    missing = [(c["sha256"], ALERTING[c["state"]]) for c in final["certificates"]
               if c["state"] in ALERTING and (c["sha256"], ALERTING[c["state"]]) not in sent]
    no_gone = [s for s in alerted - present if not gone[s]]
    print("   alerts: %s" % dict(sorted(events.items())))
    print("   sent twice: %d%s; due and never sent: %d%s; alerted, replaced and no cert.gone: "
          "%d%s" % (len(dups), (" e.g. %s" % dups[:2]) if dups else "", len(missing),
                    (" e.g. %s" % missing[:2]) if missing else "", len(no_gone),
                    (" e.g. %s" % no_gone[:2]) if no_gone else ""))
    print("   final inventory: %d certificates, %d errors"
          % (len(final["certificates"]), len(final["errors"])))
    return not dups and not missing and not no_gone and max(p99s) < 5


def main():
    # 1,000 clients here and in statusload (a child): more descriptors than the usual 1,024.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--only", choices=["clients", "churn"])
    ap.add_argument("--steady", action="store_true",
                    help="the estate has the replacements' ten-year spread of dates, so that "
                    "the number of alerted certificates (what the engine remembers) stays "
                    "level: RSS must then stay flat")
    ap.add_argument("--no-textfile", action="store_true",
                    help="without alerts.textfile (the Prometheus file rewritten at each "
                    "evaluation)")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    mk = os.path.join(build, "bench", "mkcorpus")
    for tool in (mk, os.path.join(build, "bench", "statusload"), os.path.join(build, "kigend")):
        if not os.access(tool, os.X_OK):
            sys.exit("load: %s is missing (cmake --build %s)" % (tool, args.build))
    out = os.path.join(HERE, "out", "load")
    os.makedirs(out, exist_ok=True)
    n_pool = int(args.minutes * 60 / 6) * 1000 + 1000
    print("making 100,000 + %d certificates (once)..." % n_pool, flush=True)
    estate = "ten100k" if args.steady else "naccs100k"
    if args.steady:
        corpus(mk, os.path.join(out, estate), 100000, 0)
    else:
        corpus(mk, os.path.join(out, estate), 100000, 0, profile="naccs")
    corpus(mk, os.path.join(out, "pool%d" % n_pool), n_pool)
    work = tempfile.mkdtemp(prefix="kigen-load-")
    os.chmod(work, 0o755)
    ks, pool = os.path.join(work, "ks"), os.path.join(work, "pool")
    src = os.path.join(out, estate)
    for i, name in enumerate(sorted(os.listdir(src))):
        dd = os.path.join(ks, "d%03d" % (i // 1000))
        if i % 1000 == 0:
            os.makedirs(dd)
        shutil.copy(os.path.join(src, name), dd)
    shutil.copytree(os.path.join(out, "pool%d" % n_pool), pool)
    pass_file = os.path.join(work, "bench.pass")
    open(pass_file, "w").write("bench-pass\n")
    d = Kigend("load", os.path.join(build, "kigend"), ks, pass_file)
    # No exec hook here: 50,000 changes would spawn tens of thousands of processes, which
    # measures fork, not kigen. One full scan an hour, as configured in production.
    with open(d.config) as f:
        text = f.read()
    text = re.sub(r'  exec: "true"\n', "", text)
    text = re.sub(r"scan_interval: \S+", "scan_interval: 1h", text)
    if args.no_textfile:
        text = re.sub(r"  textfile: \S+\n", "", text)
    with open(d.config, "w") as f:
        f.write(text)
    d.write_config = lambda broken=False: None
    ok = True
    try:
        t0 = time.time()
        if not d.start():
            sys.exit("load: the daemon did not come up: %s" % d.stderr()[-2000:])
        print("daemon up after %.1f s (first scan of 100,000 files), RSS %d KiB"
              % (time.time() - t0, rss_kib(d.proc.pid)), flush=True)
        while time.time() - d.syslog.last < 5:
            time.sleep(1)
        print("first alerts out: %d, RSS %d KiB" % (len(d.syslog.snapshot()),
                                                    rss_kib(d.proc.pid)), flush=True)
        if args.only in (None, "clients"):
            part_clients(build, d)
        if args.only in (None, "churn"):
            ok = part_churn(build, d, ks, pool, args.minutes)
        rc = d.stop()
        print()
        print("daemon stopped with status %s; load: %s" % (rc, "PASS" if ok and rc == 0 else "FAIL"))
        return 0 if ok and rc == 0 else 1
    finally:
        d.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
