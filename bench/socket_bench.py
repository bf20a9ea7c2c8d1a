#!/usr/bin/env python3
"""Benchmark of the status socket (issue #5), never part of the tests.

  1. `status` latency, 100 concurrent clients, while the daemon's first full scan of the
     10,000 + 500 file corpus (bench/out/c10k) runs: p50, p99, max.
  2. `kigenctl list --json` of the 100,000 certificate corpus (bench/out/c100k), end to end.
  3. (render, only when asked) `status` latency while the 100,000 certificates' metrics and
     list are rendered: metrics_listen on 127.0.0.1 and the textfile on; for each window,
     four bench/statusload clients ask status without pause while one request runs:
     `metrics` or `list` on the socket, or `rescan` until its evaluation has published the
     metrics to the textfile and the endpoint. Prints status p50/p99/max per window.

Usage: bench/socket_bench.py BUILD_DIR [status|list|render]   (run bench/run.sh first: it
makes the corpora; with status or list, only that part runs; render runs only when asked)
"""
import urllib.request
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from kigensock import free_port, raw_answer  # noqa: E402

build = sys.argv[1] if len(sys.argv) > 1 else "build"
only = sys.argv[2] if len(sys.argv) > 2 else None
here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "out")


def start(corpus, extra=""):
    tmp = tempfile.mkdtemp(prefix="kigen-sbench-")
    sock_path = os.path.join(tmp, "kigen.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(os.path.join(tmp, "notify"))
    with open(os.path.join(tmp, "kigen.yaml"), "w") as f:
        f.write("socket: %s\nstate_dir: %s/state\nkeystores:\n"
                "  - { name: bench, path: %s, passwords: [ { file: %s/bench.pass } ] }\n"
                "probes: { targets: [] }\n%s"
                % (sock_path, tmp, corpus, out,
                   extra.replace("TMP", tmp) or "alerts: { journald: false }\n"))
    proc = subprocess.Popen([os.path.join(build, "kigend"), "--config",
                             os.path.join(tmp, "kigen.yaml")],
                            env=dict(os.environ, NOTIFY_SOCKET=os.path.join(tmp, "notify")),
                            stderr=subprocess.DEVNULL)
    return tmp, sock_path, notify, proc


def wait_ready(notify, timeout):
    notify.settimeout(timeout)
    while True:
        if b"READY=1" in notify.recv(65536):
            return


with open(os.path.join(out, "bench.pass"), "w") as f:
    f.write("bench-pass\n")



def ask(path, request):
    """One request on a new connection; the answer line (bytes). No time limit: a metrics
    answer of 100,000 certificates takes tens of seconds on a busy machine."""
    return raw_answer(path, request + b"\n", timeout=None)


def render_bench():
    port = free_port()
    extra = ("metrics_listen: 127.0.0.1:%d\n"
             "alerts: { journald: false, textfile: TMP/kigen.prom }\n" % port)
    tmp, path, notify, proc = start(os.path.join(out, "c100k"), extra)
    rows = []

    def window(kind, action):
        """status from 4 bench/statusload clients (C, epoll) for as long as action runs."""
        stop_file = os.path.join(tmp, "stop")
        if os.path.exists(stop_file):
            os.unlink(stop_file)
        load = subprocess.Popen([os.path.join(build, "bench", "statusload"), path, "4", "600",
                                 stop_file], stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)  # connected
        t0 = time.monotonic()
        size = action()
        took = time.monotonic() - t0
        open(stop_file, "w").close()
        n, p50, p99, worst = load.communicate()[0].split()
        rows.append((kind, took, size, int(n), float(p50), float(p99), float(worst)))

    try:
        wait_ready(notify, 600)
        # The first alerts of a neglected corpus go out first; the metrics follow them.
        textfile = os.path.join(tmp, "kigen.prom")
        while not os.path.exists(textfile):
            time.sleep(0.5)
        time.sleep(5)
        window("quiet (no render)", lambda: time.sleep(5) or 0)

        def publish():
            # rescan: its evaluation renders and publishes the metrics (at most every 10 s)
            before = os.stat(textfile).st_ino
            assert b'"ok":true' in ask(path, b'{"cmd":"rescan"}')
            while os.stat(textfile).st_ino == before:
                time.sleep(0.005)
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port) as r:
                return len(r.read())

        for _ in range(3):
            window("socket metrics", lambda: len(ask(path, b'{"cmd":"metrics"}')))
            window("socket list", lambda: len(ask(path, b'{"cmd":"list"}')))
            time.sleep(10)
            window("rescan, then textfile + HTTP publish", publish)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    print("| window (100,000 certificates) | took | answer | status answered | "
          "p50 / p99 / max |")
    print("|---|---|---|---|---|")
    for kind, took, size, n, p50, p99, worst in rows:
        print("| %s | %.2f s | %d MB | %d | %.2f / %.2f / %.2f ms |"
              % (kind, took, size // 1000000, n, p50, p99, worst))


if only == "render":
    render_bench()
    sys.exit(0)

# 1. status under a full scan, measured by bench/statusload (C, epoll: no client overhead).
tmp, path, notify, proc = start(os.path.join(out, "c10k"))
try:
    if only == "list":
        raise StopIteration
    stop_file = os.path.join(tmp, "stop")
    load = subprocess.Popen([os.path.join(build, "bench", "statusload"), path, "100", "600",
                             stop_file], stdout=subprocess.PIPE, text=True)
    t0 = time.time()
    wait_ready(notify, 120)
    scan = time.time() - t0
    open(stop_file, "w").close()
    n, p50, p99, worst = load.communicate()[0].split()
    print("| status, 100 clients, during the first scan (%.2f s) of 10,500 files |" % scan)
    print("|   requests answered | %s |" % n)
    print("|   p50 / p99 / max   | %.2f / %.2f / %.2f ms |" % (float(p50), float(p99), float(worst)))
except StopIteration:
    pass
finally:
    proc.terminate()
    proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)
if only == "status":
    sys.exit(0)

# 2. list --json of 100,000 certificates.
tmp, path, notify, proc = start(os.path.join(out, "c100k"))
try:
    wait_ready(notify, 600)
    time.sleep(60)  # the first alerts of a neglected corpus go out first (1,000 a second)
    best = None
    for _ in range(3):
        t0 = time.time()
        r = subprocess.run([os.path.join(build, "kigenctl"), "--socket", path, "list", "--json"],
                           stdout=subprocess.PIPE)
        took = time.time() - t0
        best = took if best is None or took < best else best
    print("| kigenctl list --json, 100,000 certificates (%d MB) | %.2f s |"
          % (len(r.stdout) // 1000000, best))
finally:
    proc.terminate()
    proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)
