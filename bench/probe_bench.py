#!/usr/bin/env python3
"""Benchmark of the probes (issue #6), never part of the tests. Loopback only.

1,000 targets: 500 TLS targets spread over four `openssl s_server` processes (certificate of
the test CA, verified with ca_file, host name checked) and 500 TCP targets on one listener.

  1. `kigend --once`: one round of all 1,000, wall time and peak RSS.
  2. The daemon: its first round (started within the 10 s jitter), with 100 clients asking
     `status` meanwhile (bench/statusload): round time, status p50/p99/max, peak RSS.

Usage: bench/probe_bench.py BUILD_DIR   (the fixtures must exist: BUILD_DIR/fixtures, made by
`make check` or tests/gen/make_fixtures.sh BUILD_DIR/fixtures)
"""
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from kigensock import free_port  # noqa: E402

build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
probe = os.path.join(build, "fixtures", "probe")
N_TLS, N_TCP, SERVERS = 500, 500, 4


def tls_server(port):
    return subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port,
                             "-cert", os.path.join(probe, "good.pem"),
                             "-key", os.path.join(probe, "good.key"), "-quiet", "-naccept",
                             "1000000"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def tcp_listener():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(4096)

    def accept():
        while True:
            try:
                c, _ = s.accept()
                c.close()
            except OSError:
                return
    threading.Thread(target=accept, daemon=True).start()
    return s


def peak_rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0


def main():
    tmp = tempfile.mkdtemp(prefix="kigen-pbench-")
    ports = [free_port() for _ in range(SERVERS)]
    servers = [tls_server(p) for p in ports]
    tcp = tcp_listener()
    time.sleep(0.5)
    ca = os.path.join(probe, "ca.pem")
    lines = []
    for i in range(N_TLS):
        lines.append("    - { name: tls%d, host: localhost, port: %d, tls: true, ca_file: %s }"
                     % (i, ports[i % SERVERS], ca))
    for i in range(N_TCP):
        lines.append("    - { name: tcp%d, host: 127.0.0.1, port: %d, tls: false }"
                     % (i, tcp.getsockname()[1]))
    sock = os.path.join(tmp, "kigen.sock")
    config = os.path.join(tmp, "kigen.yaml")
    with open(config, "w") as f:
        f.write("socket: %s\nstate_dir: %s/state\nkeystores: []\nalerts: { journald: false }\n"
                "probes:\n  interval: 10m\n  timeout: 10s\n  targets:\n%s\n"
                % (sock, tmp, "\n".join(lines)))
    try:
        # 1. --once
        t0 = time.time()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        p = subprocess.run([os.path.join(build, "kigend"), "--config", config, "--once",
                            "--format", "json"], capture_output=True, text=True)
        took = time.time() - t0
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        doc = json.loads(p.stdout)
        up = sum(1 for x in doc["probes"] if x["state"] == "up")
        print("| kigend --once, 1,000 loopback targets (500 TLS) | %.2f s | %d up | peak RSS %.0f MiB%s |"
              % (took, up, rss / 1024, "" if rss > before else " (approx.)"))

        # 2. The daemon's first round under 100 status clients.
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(os.path.join(tmp, "notify"))
        proc = subprocess.Popen([os.path.join(build, "kigend"), "--config", config],
                                env=dict(os.environ, NOTIFY_SOCKET=os.path.join(tmp, "notify")),
                                stderr=subprocess.DEVNULL)
        notify.settimeout(60)
        while b"READY=1" not in notify.recv(65536):
            pass
        stop = os.path.join(tmp, "stop")
        load = subprocess.Popen([os.path.join(build, "bench", "statusload"), sock, "100", "120",
                                 stop], stdout=subprocess.PIPE, text=True)
        t0 = time.time()
        done = 0
        while time.time() - t0 < 60:
            r = subprocess.run([os.path.join(build, "kigenctl"), "--socket", sock, "--json",
                                "probes"], capture_output=True, text=True)
            ans = json.loads(r.stdout)
            done = sum(1 for x in ans["probes"] if x["last_probe"])
            if done == N_TLS + N_TCP:
                break
            time.sleep(0.2)
        round_s = time.time() - t0
        open(stop, "w").close()
        n, p50, p99, worst = load.communicate()[0].split()
        up = sum(1 for x in ans["probes"] if x["state"] == "up")
        print("| daemon, first round of 1,000 targets (spread over the 10 s jitter) | %.1f s | "
              "%d results, %d up |" % (round_s, done, up))
        print("|   status, 100 clients meanwhile: %s answers, p50 / p99 / max | %.2f / %.2f / %.2f ms |"
              % (n, float(p50), float(p99), float(worst)))
        print("|   daemon peak RSS | %.0f MiB |" % peak_rss_mib(proc.pid))
        proc.terminate()
        proc.wait()
    finally:
        for s in servers:
            s.kill()
            s.wait()
        tcp.close()
        shutil.rmtree(tmp, ignore_errors=True)


main()
