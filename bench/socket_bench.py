#!/usr/bin/env python3
"""Benchmark of the status socket (issue #5), never part of the tests.

  1. `status` latency, 100 concurrent clients, while the daemon's first full scan of the
     10,000 + 500 file corpus (bench/out/c10k) runs: p50, p99, max.
  2. `kigenctl list --json` of the 100,000 certificate corpus (bench/out/c100k), end to end.

Usage: bench/socket_bench.py BUILD_DIR [status|list]   (run bench/run.sh first: it makes
the corpora; with status or list, only that part runs)
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build"
only = sys.argv[2] if len(sys.argv) > 2 else None
here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "out")


def start(corpus):
    tmp = tempfile.mkdtemp(prefix="kigen-sbench-")
    sock_path = os.path.join(tmp, "kigen.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(os.path.join(tmp, "notify"))
    with open(os.path.join(tmp, "kigen.yaml"), "w") as f:
        f.write("socket: %s\nstate_dir: %s/state\nkeystores:\n"
                "  - { name: bench, path: %s, passwords: [ { file: %s/bench.pass } ] }\n"
                "probes: { targets: [] }\nalerts: { journald: false }\n"
                % (sock_path, tmp, corpus, out))
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
