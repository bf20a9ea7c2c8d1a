#!/usr/bin/env python3
"""End to end: probes in the resident daemon and in `kigend --once`, loopback only.

A real `openssl s_server` with a certificate of the test CA, TCP listeners opened and closed by
the test, a port nobody listens on and a name under `.invalid`. Checks the SPEC §6 `probes`
entries and exit status of --once, the server certificate in the inventory (keystore
probe:<name>), probe.down after failures_before_alert failures and exactly one probe.up, the
same across a restart, maintenance windows that silence failures, the socket's `probes`
answer, the metrics, and a reload that drops a target.

Chains (SPEC §8): a server that sends its leaf and an intermediate, verified against a root
given by ca_file, gives three entries of probe:<name> and `tls_chain_not_after` the
intermediate's; unverified, the two certificates it sent; an intermediate that enters its
renewal window is alerted on like any certificate.
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


def tls_server(name, chain=None):
    """openssl s_server with PROBE/name.pem (and PROBE/chain.pem sent after it) on a free
    loopback port; returns (proc, port)."""
    port = free_port()
    extra = ["-cert_chain", os.path.join(PROBE, chain + ".pem")] if chain else []
    proc = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port,
                             "-cert", os.path.join(PROBE, name + ".pem"),
                             "-key", os.path.join(PROBE, name + ".key"), "-www", "-quiet"] + extra,
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
    server = sorted((r for r in doc["certificates"] if r["keystore"] == "probe:good"),
                    key=lambda r: r["entry"])
    check(len(server) == 2 and server[0]["sha256"] == sha and server[0]["entry"] == "0" and
          server[0]["path"] == "localhost:%d" % good_port and server[0]["not_after"] == not_after,
          "the server certificate is in the inventory as probe:good: %s" % server)
    # The server sends its leaf alone: the CA of ca_file, its trust anchor, is entry 1.
    check(len(server) == 2 and server[1]["sha256"] == fact("ca")[1] and server[1]["entry"] == "1",
          "the trust anchor is entry 1 of probe:good: %s" % server)
    check(g["tls_chain_not_after"] == not_after, "the leaf ends the chain: %s" % g)

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


CHAIN = ("chain", "chain-inter", "chain-root")  # leaf, intermediate, root (gen_probe.sh)
CHAIN_LEAF_END = "2028-01-01T00:00:00Z"
CHAIN_INTER_END = "2027-06-01T00:00:00Z"
IN_INTER_WINDOW = "2027-05-20T12:00:00Z"  # 11 days before the intermediate ends: renewal_open


def chain_records(doc, name):
    """The records of keystore probe:<name>, by entry."""
    return sorted((r for r in doc["certificates"] if r["keystore"] == "probe:" + name),
                  key=lambda r: int(r["entry"]))


def case_chain_once(tmp, chain_port):
    """--once: the chain of three as entries 0 1 2, tls_chain_not_after, and unverified chains."""
    global cases
    cases += 1
    config = os.path.join(tmp, "chain.yaml")
    root = os.path.join(PROBE, "chain-root.pem")
    write(config, """state_dir: %s/state-chain
timezone: UTC
keystores: []
probes:
  timeout: 5s
  targets:
    - { name: chain, host: localhost, port: %d, tls: true, ca_file: %s }
    - { name: wrong-ca, host: localhost, port: %d, tls: true, ca_file: %s }
    - { name: system, host: localhost, port: %d, tls: true }
""" % (tmp, chain_port, root, chain_port, os.path.join(PROBE, "ca.pem"), chain_port))
    rc, doc, err = once(config, NOW)
    if not check(doc is not None, "--once prints JSON: %s" % err):
        return
    probes = {p["name"]: p for p in doc["probes"]}
    c = probes["chain"]
    check(c["state"] == "up" and c["tls_not_after"] == CHAIN_LEAF_END and
          c["tls_chain_not_after"] == CHAIN_INTER_END,
          "tls_chain_not_after is the intermediate's, tls_not_after the leaf's: %s" % c)
    for p in doc["probes"]:
        check(list(p).index("tls_chain_not_after") == list(p).index("tls_not_after") + 1,
              "tls_chain_not_after follows tls_not_after as in SPEC §6: %s" % list(p))
    recs = chain_records(doc, "chain")
    check([r["sha256"] for r in recs] == [fact(n)[1] for n in CHAIN] and
          [r["entry"] for r in recs] == ["0", "1", "2"] and
          all(r["path"] == "localhost:%d" % chain_port and r["format"] == "der" for r in recs),
          "leaf, intermediate and root are entries 0 1 2 of probe:chain: %s" % recs)
    check([r["not_after"] for r in recs] == [CHAIN_LEAF_END, CHAIN_INTER_END,
                                             "2040-01-01T00:00:00Z"], "their dates: %s" % recs)
    # Failing verification: what the server sent (leaf and intermediate), no trust anchor.
    for name in ("wrong-ca", "system"):
        p = probes[name]
        check(p["state"] == "down" and p["error"] == "tls_verify" and
              p["tls_not_after"] == CHAIN_LEAF_END and p["tls_chain_not_after"] == CHAIN_INTER_END,
              "%s: tls_verify, and the chain it sent still dated: %s" % (name, p))
        recs = chain_records(doc, name)
        check([r["sha256"] for r in recs] == [fact(n)[1] for n in CHAIN[:2]] and
              [r["entry"] for r in recs] == ["0", "1"],
              "%s: the two certificates the server sent are recorded: %s" % (name, recs))
    check(rc == 1, "exit 1 with probes down, got %d" % rc)

    # The intermediate enters its renewal window: its record says so and --once exits 1.
    write(config, open(config).read().split("    - { name: wrong-ca")[0])
    rc, doc, err = once(config, IN_INTER_WINDOW)
    if check(doc is not None, "--once prints JSON: %s" % err):
        states = [r["state"] for r in chain_records(doc, "chain")]
        check(states == ["ok", "renewal_open", "ok"], "the intermediate's window is open: %s"
              % states)
        check(rc == 1 and doc["summary"]["renewal_open"] == 1,
              "exit 1 for the intermediate (%d): %s" % (rc, doc["summary"]))
    p = subprocess.run([KIGEND, "--config", config, "--once", "--format", "table", "--now",
                        IN_INTER_WINDOW], capture_output=True, text=True, timeout=60)
    check("certificate chain until 2027-06-01" in p.stdout,
          "the table says when the chain ends: %s" % p.stdout)


def case_chain_daemon(chain_port):
    """The daemon alerts on an intermediate that enters its window; socket, kigenctl, metrics."""
    global cases
    cases += 1
    root = os.path.join(PROBE, "chain-root.pem")
    inter_sha = fact("chain-inter")[1]
    d = Daemon("probechain", [], now=IN_INTER_WINDOW, extra="socket: SOCKET\n")
    sock = os.path.join(d.dir, "kigen.sock")
    write(d.config, open(d.config).read().replace("SOCKET", sock))
    probe_config(d, "    - { name: chain, host: localhost, port: %d, tls: true, ca_file: %s }\n"
                 % (chain_port, root))
    try:
        check(d.start(), "READY=1: %s" % d.stderr())
        hits = d.wait_alert(lambda a: a["msgid"] == "cert.renewal_open", 20)
        if check(hits, "cert.renewal_open for the intermediate: %s" % d.stderr()):
            sd = hits[0]["sd"]
            check(sd.get("sha256") == inter_sha and sd.get("probe") == "chain" and
                  sd.get("host") == "localhost" and sd.get("port") == str(chain_port) and
                  "Kigen Chain Test Intermediate" in sd.get("subject", ""),
                  "the alert is about the intermediate of probe chain: %r" % sd)
        time.sleep(1)
        opened = [a for a in d.alerts() if a["msgid"] == "cert.renewal_open"]
        check(len(opened) == 1, "only the intermediate's window is open: %s" % opened)

        ans = socket_request(d, ["probes"])
        p = (ans.get("probes") or [{}])[0]
        check(p.get("tls_chain_not_after") == CHAIN_INTER_END and
              [c["sha256"] for c in p.get("chain", [])] == [fact(n)[1] for n in CHAIN] and
              [c["entry"] for c in p.get("chain", [])] == ["0", "1", "2"],
              "the probes answer gives the chain: %s" % p)
        table = subprocess.run([KIGENCTL, "--socket", sock, "probes"], capture_output=True,
                               text=True, timeout=30)
        check("certificate chain until 2027-06-01" in table.stdout and
              "Kigen Chain Test Intermediate" in table.stdout,
              "kigenctl probes names the certificate that ends the chain: %s" % table.stdout)
        show = subprocess.run([KIGENCTL, "--socket", sock, "show", inter_sha],
                              capture_output=True, text=True, timeout=30)
        check("probe:chain" in show.stdout and "localhost:%d [1]" % chain_port in show.stdout,
              "kigenctl show lists the intermediate's location: %s" % show.stdout)
        metrics = socket_request(d, ["metrics"]).get("metrics", "")
        check('kigen_probe_tls_chain_not_after_seconds{name="chain",host="localhost",port="%d"} '
              '%s' % (chain_port, open(os.path.join(PROBE, "chain-inter.not_after")).read().strip())
              in metrics, "kigen_probe_tls_chain_not_after_seconds in metrics")
        check(metrics.count("kigen_probe_tls_chain_not_after_seconds{") == 1,
              "one chain series per target")
        check('entry="1"' in metrics and 'issuer_cn="Kigen Chain Test Root"' in metrics,
              "the intermediate has its kigen_cert_* series")
    finally:
        d.close()


def main():
    tmp = "/tmp/kigen-probes-%d" % os.getpid()
    os.makedirs(tmp, exist_ok=True)
    server, good_port = tls_server("good")
    chain_server, chain_port = tls_server("chain", "chain-inter")
    try:
        case_once(tmp, good_port)
        case_daemon(tmp, good_port)
        case_maintenance()
        case_chain_once(tmp, chain_port)
        case_chain_daemon(chain_port)
    finally:
        for s in (server, chain_server):
            s.kill()
            s.wait()
        subprocess.run(["rm", "-rf", tmp])
    finish("test_probes", cases)


main()
