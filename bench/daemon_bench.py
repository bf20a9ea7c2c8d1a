#!/usr/bin/env python3
"""Benchmark of the resident daemon (issue #4), never part of the tests.

With the corpus of 100,000 certificate files (bench/out/c100k, made by bench/run.sh):
  1. time to READY=1 and memory (VmHWM, VmRSS) with the inventory loaded;
  2. one changed file: time until STATUS= shows it read, and how many files were read;
  3. idle cost: context switches of every daemon thread over IDLE seconds (default 60).

Usage: bench/daemon_bench.py BUILD_DIR [IDLE_SECONDS] [CORPUS]
(CORPUS: c100k, the default, dates spread over ten years; or c100k-naccs, made by
 KIGEN_CORPUS=naccs build/bench/mkcorpus bench/out/c100k-naccs 100000 0)
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

build = sys.argv[1] if len(sys.argv) > 1 else "build"
idle = int(sys.argv[2]) if len(sys.argv) > 2 else 60
here = os.path.dirname(os.path.abspath(__file__))
corpus = os.path.join(here, "out", sys.argv[3] if len(sys.argv) > 3 else "c100k")
if not os.path.isdir(corpus):
    sys.exit("run bench/run.sh first: it makes %s" % corpus)

tmp = tempfile.mkdtemp(prefix="kigen-bench-")
notify_path = os.path.join(tmp, "notify.sock")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(notify_path)
config = os.path.join(tmp, "kigen.yaml")
with open(config, "w") as f:
    f.write("state_dir: %s/state\nkeystores:\n  - { name: bench, path: %s }\n"
            "probes: { targets: [] }\nalerts: { journald: false }\n" % (tmp, corpus))


def status(timeout):
    """The next STATUS= line, or None."""
    end = time.time() + timeout
    while time.time() < end:
        sock.settimeout(max(end - time.time(), 0.001))
        try:
            msg = sock.recv(65536).decode()
        except socket.timeout:
            return None
        for line in msg.split("\n"):
            if line.startswith("STATUS="):
                return line
    return None


def counters(line):
    m = re.search(r"files read (\d+), unchanged (\d+), scans (\d+)", line)
    return tuple(int(x) for x in m.groups())


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])


def cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def switches(pid):
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for line in f:
                if "ctxt_switches" in line:
                    total += int(line.split()[1])
    return total


kigend = os.path.join(build, "kigend")
t0 = time.time()
proc = subprocess.Popen([kigend, "--config", config], env=dict(os.environ, NOTIFY_SOCKET=notify_path),
                        stderr=subprocess.DEVNULL)
try:
    first = status(600)
    ready = time.time() - t0
    print("| 100,000 certificates: first scan to READY=1 | %.2f s |" % ready)
    print("| peak RSS (VmHWM) / RSS after the scan        | %d / %d MiB |"
          % (proc_status(proc.pid, "VmHWM") // 1024, proc_status(proc.pid, "VmRSS") // 1024))
    # Steady state: a corpus with dates spread over ten years has tens of thousands of
    # certificates to alert about, sent 1,000 a second (KIGEN_ENGINE_MAX_OUTBOX); wait until
    # the daemon has used no CPU for three seconds.
    t_storm = time.time()
    last, quiet = cpu(proc.pid), 0
    while quiet < 3:
        time.sleep(1)
        now_cpu = cpu(proc.pid)
        quiet = quiet + 1 if now_cpu == last else 0
        last = now_cpu
    print("| first alerts all sent after READY=1          | %.0f s |" % (time.time() - t_storm - 3))
    print("| peak RSS (VmHWM) after them                  | %d MiB |"
          % (proc_status(proc.pid, "VmHWM") // 1024))
    os.utime(os.path.join(corpus, "c000001.der"))  # mtime only: read again, nothing to say
    line = status(30)
    before = counters(line)
    victim = os.path.join(corpus, "c000000.pem")
    shutil.copy(victim, victim + ".tmp")
    os.rename(victim + ".tmp", victim)  # a new inode: a changed file
    t1 = time.time()
    line = status(30)
    after = counters(line)
    print("| one changed file reflected after             | %.3f s |" % (time.time() - t1))
    print("| files read for it / scans                    | %d / %d |"
          % (after[0] - before[0], after[2] - before[2]))
    time.sleep(2)
    s0 = switches(proc.pid)
    time.sleep(idle)
    s1 = switches(proc.pid)
    print("| idle: context switches in %3d s (all threads) | %d |" % (idle, s1 - s0))
    print("| RSS idle                                     | %d MiB |"
          % (proc_status(proc.pid, "VmRSS") // 1024))
finally:
    proc.terminate()
    proc.wait()
    sock.close()
    shutil.rmtree(tmp, ignore_errors=True)
