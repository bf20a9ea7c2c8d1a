#!/usr/bin/env python3
"""End to end: probes in the resident daemon and in `kigend --once`, loopback only.

A real `openssl s_server` with a certificate of the test CA, TCP listeners opened and closed by
the test, a port nobody listens on and a name under `.invalid`. Checks the SPEC §6 `probes`
entries and exit status of --once, the server certificate in the inventory (keystore
probe:<name>), probe.down after failures_before_alert failures and exactly one probe.up, the
same across a restart, maintenance windows that silence failures, the socket's `probes`
answer, the metrics, and a reload that drops a target.
"""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kigentest import KIGEND, FIX, Daemon, check, finish, free_port  # noqa: E402

KIGENCTL = os.environ["KIGENCTL"]
PROBE = os.path.join(FIX, "probe")
NOW = "2026-11-24T12:00:00Z"
cases = 0


class Listener:
    """A TCP listener on loopback that accepts and closes: a host that answers on its port."""

    def __init__(self, port):
        self.port = port
        self.sock = None

    def open(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None


def tls_server(name):
    """openssl s_server with PROBE/name.pem on a free loopback port; returns (proc, port)."""
    port = free_port()
    proc = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port,
                             "-cert", os.path.join(PROBE, name + ".pem"),
                             "-key", os.path.join(PROBE, name + ".key"), "-www", "-quiet"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("openssl s_server did not start")


def fact(name):
    with open(os.path.join(PROBE, name + ".not_after")) as f:  # Unix seconds, from openssl
        not_after = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(f.read().strip())))
    with open(os.path.join(PROBE, name + ".sha256")) as f:
        return not_after, f.read().strip()


def once(config, now=None):
    cmd = [KIGEND, "--config", config, "--once", "--format", "json"] + (["--now", now] if now else [])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    try:
        return p.returncode, json.loads(p.stdout), p.stderr
    except ValueError:
        return p.returncode, None, p.stderr


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def case_once(tmp, good_port):
    """--once: every entry of SPEC §6 `probes`, the server certificate, the exit status."""
    global cases
    cases += 1
    closed = free_port()
    config = os.path.join(tmp, "once.yaml")
    ca = os.path.join(PROBE, "ca.pem")
    write(config, """state_dir: %s/state
timezone: UTC
keystores: []
probes:
  timeout: 5s
  targets:
    - { name: good, host: localhost, port: %d, tls: true, ca_file: %s }
    - { name: closed, host: 127.0.0.1, port: %d, tls: false }
    - { name: nowhere, host: kigen-test.invalid, port: 443, tls: true }
""" % (tmp, good_port, ca, closed))
    rc, doc, err = once(config)
    if not check(doc is not None, "--once prints JSON: %s" % err):
        return
    probes = {p["name"]: p for p in doc["probes"]}
    check([p["name"] for p in doc["probes"]] == ["good", "closed", "nowhere"],
          "probes in configuration order: %s" % doc["probes"])
    for p in doc["probes"]:
        check(set(p) >= {"name", "host", "port", "state", "connect_ms", "tls_not_after", "error"},
              "every SPEC §6 member: %s" % p)
    not_after, sha = fact("good")
    g = probes["good"]
    check(g["state"] == "up" and g["error"] is None and g["host"] == "localhost" and
          g["port"] == good_port, "good target up: %s" % g)
    check(isinstance(g["connect_ms"], (int, float)) and g["connect_ms"] >= 0,
          "connect_ms is a number: %s" % g)
    check(g["tls_not_after"] == not_after, "tls_not_after %s == %s" % (g["tls_not_after"], not_after))
    c = probes["closed"]
    check(c["state"] == "down" and c["error"] == "connect_refused" and c["connect_ms"] is None and
          c["tls_not_after"] is None, "closed port: %s" % c)
    n = probes["nowhere"]
    check(n["state"] == "down" and n["error"] == "dns", "unresolvable name: %s" % n)
    check(doc["summary"]["probes_down"] == 2, "probes_down 2: %s" % doc["summary"])
    check(rc == 1, "exit 1 with a probe down and all certificates fine, got %d" % rc)
    server = [r for r in doc["certificates"] if r["keystore"] == "probe:good"]
    check(len(server) == 1 and server[0]["sha256"] == sha and
          server[0]["path"] == "localhost:%d" % good_port and server[0]["not_after"] == not_after,
          "the server certificate is in the inventory as probe:good: %s" % server)

    # The same targets inside a maintenance window: maintenance, not down; exit 0.
    write(config, open(config).read() + """maintenance:
  - { name: all, targets: [closed, nowhere], every: daily, at: "11:00", duration: 2h,
      timezone: UTC }
""")
    rc, doc, err = once(config, NOW)
    if check(doc is not None, "--once prints JSON: %s" % err):
        states = {p["name"]: p["state"] for p in doc["probes"]}
        check(states == {"good": "up", "closed": "maintenance", "nowhere": "maintenance"},
              "failures in a window are maintenance: %s" % states)
        check(doc["summary"]["probes_down"] == 0 and rc == 0, "exit 0 (%d): %s" % (rc, doc["summary"]))
    # After the window: down again.
    rc, doc, err = once(config, "2026-11-24T13:30:00Z")
    if check(doc is not None, "--once prints JSON: %s" % err):
        check(doc["summary"]["probes_down"] == 2 and rc == 1, "after the window, down: %s" % doc["probes"])

    # Probing off: "probes": [].
    write(config, "state_dir: %s/state\nkeystores: []\nprobes: { targets: [] }\n" % tmp)
    rc, doc, err = once(config)
    check(doc is not None and doc["probes"] == [] and rc == 0, "probes off: [] and exit 0: %s" % err)


def probe_config(d, targets, extra=""):
    text = open(d.config).read().replace("probes: { targets: [] }\n", """probes:
  interval: 1s
  timeout: 2s
  failures_before_alert: 3
  targets:
%s""" % targets)
    write(d.config, text + extra)


def socket_request(d, req):
    p = subprocess.run([KIGENCTL, "--socket", os.path.join(d.dir, "kigen.sock"), "--json"] + req,
                       capture_output=True, text=True, timeout=30)
    try:
        return json.loads(p.stdout)
    except ValueError:
        return {"stdout": p.stdout, "stderr": p.stderr}


def wait(pred, timeout):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    return None


def case_daemon(tmp, good_port):
    """down after 3 failures, one probe.up, nothing twice across a restart, maintenance, reload."""
    global cases
    cases += 1
    port = free_port()
    flappy = Listener(port)
    flappy.open()
    ca = os.path.join(PROBE, "ca.pem")
    targets = ("    - { name: good, host: localhost, port: %d, tls: true, ca_file: %s }\n"
               "    - { name: flappy, host: 127.0.0.1, port: %d, tls: false }\n"
               % (good_port, ca, port))
    d = Daemon("probes", [], extra="socket: %s\n" % "SOCKET")
    write(d.config, open(d.config).read().replace("SOCKET", os.path.join(d.dir, "kigen.sock")))
    probe_config(d, targets)
    try:
        check(d.start(), "READY=1: %s" % d.stderr())
        # Both up; the server certificate joins the inventory.
        ans = wait(lambda: (lambda a: a if [p["state"] for p in a.get("probes", [])] ==
                            ["up", "up"] else None)(socket_request(d, ["probes"])), 15)
        if check(ans, "both targets up: %s" % socket_request(d, ["probes"])):
            g = ans["probes"][0]
            not_after, sha = fact("good")
            check(g["tls_not_after"] == not_after and g["server"]["sha256"] == sha and
                  g["consecutive_failures"] == 0 and g["last_probe"], "probes answer: %s" % g)
        lst = wait(lambda: (lambda a: a if a.get("certificates") else None)(
            socket_request(d, ["list", "--keystore", "probe:good"])), 10)
        check(lst and lst["certificates"][0]["sha256"] == fact("good")[1],
              "the server certificate is listed under probe:good: %s" % lst)
        metrics = socket_request(d, ["metrics"]).get("metrics", "")
        check('kigen_probe_up{name="flappy",host="127.0.0.1",port="%d"} 1' % port in metrics,
              "kigen_probe_up in metrics")
        check('kigen_probe_tls_not_after_seconds{name="good"' in metrics and
              "kigen_probe_duration_seconds{" in metrics, "probe metrics")

        # flappy stops answering: one probe.down after three failures.
        flappy.close()
        down = d.wait_alert(lambda a: a["msgid"] == "probe.down", 20)
        if check(down, "probe.down: %s" % d.stderr()):
            sd = down[0]["sd"]
            check(sd.get("probe") == "flappy" and sd.get("host") == "127.0.0.1" and
                  sd.get("port") == str(port) and sd.get("error") == "connect_refused",
                  "probe.down fields: %r" % sd)
            check("connect_refused" in down[0]["msg"], "message names the failure: %s" % down[0]["msg"])
        st = socket_request(d, ["probes"])["probes"][1]
        check(st["state"] == "down" and st["consecutive_failures"] >= 3, "down after 3: %s" % st)
        table = subprocess.run([KIGENCTL, "--socket", os.path.join(d.dir, "kigen.sock"), "probes"],
                               capture_output=True, text=True, timeout=30)
        check(table.returncode == 1 and "connect_refused: 127.0.0.1 port %d" % port in table.stdout
              and "127.0.0.1:%d" % port in table.stdout,
              "kigenctl probes shows the failure and exits 1: %d %s" % (table.returncode, table.stdout))
        status = socket_request(d, ["status"])
        check(status["summary"]["probes_down"] == 1 and status["exit_status"] >= 1 and
              status["probe_targets"] == 2,
              "status counts the probe down: %s" % status)
        time.sleep(3)
        check(len([a for a in d.alerts() if a["msgid"] == "probe.down"]) == 1,
              "probe.down once, not per failure")

        # Restart while down: nothing repeated.
        d.stop()
        check(d.start(), "READY=1 after restart: %s" % d.stderr())
        time.sleep(5)
        check(len([a for a in d.alerts() if a["msgid"] == "probe.down"]) == 1,
              "a restart does not repeat probe.down")
        # It comes back: exactly one probe.up, the one the restart remembered.
        flappy.open()
        up = d.wait_alert(lambda a: a["msgid"] == "probe.up", 15)
        check(up and up[0]["sd"].get("probe") == "flappy", "probe.up after a restart: %s" % up)
        time.sleep(2)
        check(len([a for a in d.alerts() if a["msgid"] == "probe.up"]) == 1, "probe.up once")

        # Reload without "good": its certificate leaves the inventory.
        probe_config(d, targets)  # no-op rewrite keeps the file valid
        write(d.config, open(d.config).read().replace(targets.splitlines(True)[0], ""))
        d.signal(1)
        gone = wait(lambda: (lambda a: a if len(a.get("probes", [1, 2])) == 1 else None)(
            socket_request(d, ["probes"])), 10)
        check(gone and gone["probes"][0]["name"] == "flappy" and gone["probes"][0]["state"] == "up",
              "reload keeps flappy's state and drops good: %s" % gone)
        lst = socket_request(d, ["list"])
        check(not [r for r in lst.get("certificates", []) if r["keystore"].startswith("probe:")],
              "the dropped target's certificate is gone")
    finally:
        flappy.close()
        d.close()


def case_maintenance():
    """Failures during a maintenance window raise no alert and show as maintenance."""
    global cases
    cases += 1
    port = free_port()
    d = Daemon("probemaint", [], now=NOW, extra="socket: SOCKET\n")
    write(d.config, open(d.config).read().replace("SOCKET", os.path.join(d.dir, "kigen.sock")))
    probe_config(d, "    - { name: naccs-cert, host: 127.0.0.1, port: %d, tls: true }\n" % port,
                 """maintenance:
  - { name: naccs-monthly, targets: [naccs-cert], every: daily, at: "11:00", duration: 2h,
      timezone: UTC }
""")
    try:
        check(d.start(), "READY=1: %s" % d.stderr())
        st = wait(lambda: (lambda a: a if a.get("probes") and
                           a["probes"][0]["consecutive_failures"] >= 4 else None)(
            socket_request(d, ["probes"])), 15)
        check(st and st["probes"][0]["state"] == "maintenance" and
              st["probes"][0]["error"] == "connect_refused", "maintenance state: %s" % st)
        check(not [a for a in d.alerts(0.5) if a["msgid"].startswith("probe.")],
              "no probe alert during maintenance")
    finally:
        d.close()


def main():
    tmp = "/tmp/kigen-probes-%d" % os.getpid()
    os.makedirs(tmp, exist_ok=True)
    server, good_port = tls_server("good")
    try:
        case_once(tmp, good_port)
        case_daemon(tmp, good_port)
        case_maintenance()
    finally:
        server.kill()
        server.wait()
        subprocess.run(["rm", "-rf", tmp])
    finish("test_probes", cases)


main()
