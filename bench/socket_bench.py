#!/usr/bin/env python3
"""Benchmark of the status socket (issue #5), never part of the tests.

  1. `status` latency, 100 concurrent clients, while the daemon's first full scan of the
     10,000 + 500 file corpus (bench/out/c10k) runs: p50, p99, max.
  2. `kigenctl list --json` of the 100,000 certificate corpus (bench/out/c100k), end to end.

Usage: bench/socket_bench.py BUILD_DIR   (run bench/run.sh first: it makes the corpora)
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build"
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


def connect(path, timeout=10):
    end = time.time() + timeout
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.time() > end:
                raise
            time.sleep(0.005)


def clients(path, n, stop, lat):
    """n clients, each asking status again as soon as it has its answer; one thread with
    selectors, so that the figure is the daemon's latency, not Python's thread switching."""
    import selectors
    sel = selectors.DefaultSelector()
    for _ in range(n):
        s = connect(path)
        s.setblocking(False)
        st = {"sock": s, "buf": b"", "t0": time.perf_counter()}
        s.sendall(b'{"cmd":"status"}\n')
        sel.register(s, selectors.EVENT_READ, st)
    while not stop.is_set():
        for key, _ in sel.select(0.1):
            st = key.data
            data = st["sock"].recv(65536)
            if not data:
                sel.unregister(st["sock"])
                continue
            st["buf"] += data
            while b"\n" in st["buf"]:
                _, st["buf"] = st["buf"].split(b"\n", 1)
                now = time.perf_counter()
                lat.append(now - st["t0"])
                st["t0"] = now
                st["sock"].sendall(b'{"cmd":"status"}\n')
    for key in list(sel.get_map().values()):
        key.fileobj.close()


with open(os.path.join(out, "bench.pass"), "w") as f:
    f.write("bench-pass\n")

# 1. status under a full scan.
tmp, path, notify, proc = start(os.path.join(out, "c10k"))
try:
    stop = threading.Event()
    lat = []
    thread = threading.Thread(target=clients, args=(path, 100, stop, lat))
    thread.start()
    t0 = time.time()
    wait_ready(notify, 120)
    scan = time.time() - t0
    stop.set()
    thread.join()
    all_lat = sorted(lat)
    n = len(all_lat)
    print("| status, 100 clients, during the first scan (%.2f s) of 10,500 files |" % scan)
    print("|   requests answered | %d |" % n)
    print("|   p50 / p99 / max   | %.2f / %.2f / %.2f ms |"
          % (all_lat[n // 2] * 1e3, all_lat[int(n * 0.99)] * 1e3, all_lat[-1] * 1e3))
finally:
    proc.terminate()
    proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)

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
