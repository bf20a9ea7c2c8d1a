#!/usr/bin/python3
"""End to end: the path of many admin servers (issue #15, SPEC §10), with the real parts.

Debian's prometheus and prometheus-alertmanager run on loopback with scratch directories and
random ports. Prometheus scrapes two kigend (metrics_listen) every second: A with the lean
default metrics, B with every metrics: option, each with its own keystore and labels. It
evaluates conf/kigen.rules.yml, copied with every `for:` made 0s, and sends to Alertmanager,
which groups by alertname, instance and subject_cn and posts to a webhook receiver here.

Shown at the receiver:
  - a certificate of A that ends in 10 days (kept in two files) raises
    KigenCertificateRenewalOpen with instance, keystore and subject_cn: one notification
    holding both files, not one per copy;
  - replacing both files with a renewed certificate (openssl, here) resolves it;
  - a probe target of A on a closed loopback port raises KigenProbeDown;
  - stopping B raises KigenDown for B's instance.
Then every query of the Grafana dashboard conf/grafana/kigen.json runs against this
Prometheus (variables as All and as each instance): an error, or an empty main panel, fails.

Certificates are made by openssl at test time. A missing tool fails the test.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kigentest import Daemon, check, finish, free_port, need, scratch, wait_until  # noqa: E402

SRC = os.environ["KIGEN_SRC"]
PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
cases = 0


class Receiver:
    """Alertmanager's webhook receiver: records every POSTed notification."""

    def __init__(self):
        self.notifications = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.notifications.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def find(self, status, alertname, **labels):
        """The notifications with that status whose group has alertname and labels."""
        with self.lock:
            return [n for n in self.notifications
                    if n["status"] == status and n["groupLabels"].get("alertname") == alertname
                    and all(n["commonLabels"].get(k) == v for k, v in labels.items())]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def openssl_cert(path, cn, days):
    """A self-signed certificate for cn that ends in days, written to path (atomically)."""
    tmp = path + ".tmp"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null", "-subj",
                    "/O=Example Trading/CN=%s" % cn, "-days", str(days), "-out", tmp],
                   check=True, capture_output=True)
    os.rename(tmp, path)


def closed_port():
    """A loopback port that nobody listens on: bound, never listened on, kept."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


def api(port, path, **params):
    url = "http://127.0.0.1:%d%s" % (port, path)
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())
    except Exception as e:  # an error is an answer here: the callers check it
        body = getattr(e, "read", lambda: b"")()
        try:
            return json.loads(body)
        except ValueError:
            return {"status": "error", "error": str(e)}


class Process:
    """A server started here, its output in a file of dir."""

    def __init__(self, name, argv, dir):
        self.name = name
        self.log = os.path.join(dir, name + ".log")
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)

    def output(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def rules_without_for(dst):
    """conf/kigen.rules.yml with every `for:` 0s: alerts fire at the first evaluation."""
    with open(os.path.join(SRC, "conf", "kigen.rules.yml")) as f:
        text = f.read()
    text, n = re.subn(r"^(\s+for:) \S+$", r"\1 0s", text, flags=re.M)
    check(n >= 3, "the rules have their for: clauses (%d found)" % n)
    with open(dst, "w") as f:
        f.write(text)


def start_stack(work, targets, receiver):
    """Alertmanager, then Prometheus scraping targets as job kigen; both ports."""
    am_port, prom_port = free_port(), free_port()
    with open(os.path.join(work, "alertmanager.yml"), "w") as f:
        f.write("""route:
  receiver: hook
  group_by: [alertname, instance, subject_cn]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: http://127.0.0.1:%d/
        send_resolved: true
""" % receiver.port)
    rules_without_for(os.path.join(work, "kigen.rules.yml"))
    with open(os.path.join(work, "prometheus.yml"), "w") as f:
        f.write("""global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [kigen.rules.yml]
alerting:
  alertmanagers:
    - static_configs: [ { targets: ["127.0.0.1:%d"] } ]
scrape_configs:
  - job_name: kigen
    static_configs:
%s""" % (am_port, "".join("      - targets: [\"127.0.0.1:%d\"]\n" % p for p in targets)))
    os.makedirs(os.path.join(work, "am-data"))
    am = Process("alertmanager", [
        ALERTMANAGER, "--config.file=%s/alertmanager.yml" % work,
        "--storage.path=%s/am-data" % work, "--web.listen-address=127.0.0.1:%d" % am_port,
        "--cluster.listen-address=", "--log.level=warn"], work)
    prom = Process("prometheus", [
        PROMETHEUS, "--config.file=%s/prometheus.yml" % work,
        "--storage.tsdb.path=%s/tsdb" % work, "--web.listen-address=127.0.0.1:%d" % prom_port,
        "--rules.alert.resend-delay=1s", "--log.level=warn"], work)
    return am, am_port, prom, prom_port


# Panels of conf/grafana/kigen.json that may be empty here: no TLS target answers in this test.
MAY_BE_EMPTY = {"TLS expiry of the NACCS hosts"}


def dashboard_queries():
    """(panel title, expr) of every target of the dashboard, and its variables' queries."""
    with open(os.path.join(SRC, "conf", "grafana", "kigen.json")) as f:
        dash = json.load(f)
    panels = [(p["title"], t["expr"]) for p in dash["panels"] for t in p.get("targets", [])]
    variables = [v["query"]["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    return dash, panels, variables


def check_dashboard(prom_port, instances):
    """Every query of the dashboard runs against this Prometheus, with the variables as All
    (.*) and as each instance; an error fails, and so does an empty main panel."""
    dash, panels, variables = dashboard_queries()
    ds = [v for v in dash["templating"]["list"] if v["type"] == "datasource"]
    check([v["name"] for v in ds] == ["DS_PROMETHEUS"] and
          all(p["datasource"]["uid"] == "${DS_PROMETHEUS}" for p in dash["panels"]),
          "the datasource is the variable DS_PROMETHEUS")
    check({v["name"] for v in dash["templating"]["list"]} >= {"instance", "keystore"},
          "instance and keystore variables")
    for q in variables:
        m = re.fullmatch(r"label_values\((.*), *(\w+)\)", q)
        if not check(m, "a label_values() variable query: %s" % q):
            continue
        got = api(prom_port, "/api/v1/series", **{"match[]": m.group(1).replace("$instance", ".*")})
        values = {x.get(m.group(2)) for x in got.get("data", [])} - {None}
        check(got.get("status") == "success" and values, "variable %s: %s" % (q, got))
    sums = {}
    for value in [".*"] + instances:
        for title, expr in panels:
            q = expr.replace("$instance", value).replace("$keystore", ".*")
            got = api(prom_port, "/api/v1/query", query=q)
            result = got.get("data", {}).get("result", [])
            check(got.get("status") == "success", "%s: %s: %s" % (title, q, got))
            if value == ".*":
                sums[title] = sums.get(title, 0) + sum(float(r["value"][1]) for r in result
                                                       if r["value"][1] != "NaN")
                check(result or title in MAY_BE_EMPTY, "%s is empty: %s" % (title, q))
    # ito's window opens in about 24 weeks: the workload chart shows it.
    check(sums.get("Renewal windows opening per week, next 26 weeks", 0) >= 1,
          "the renewal workload chart counts ito: %s" % sums)
    return len(panels)


def main():
    global cases
    need(PROMETHEUS, ALERTMANAGER, "openssl", "promtool")
    work = scratch("prometheus")
    ks_a, ks_b = scratch("prom-ks-a"), scratch("prom-ks-b")
    # A: one certificate in its renewal window, kept in two files; one fine.
    for name in ("sato.pem", "sato-copy.pem"):
        openssl_cert(os.path.join(ks_a, name), "sato.example.co.jp", 10)
    openssl_cert(os.path.join(ks_a, "ito.pem"), "ito.example.co.jp", 200)
    openssl_cert(os.path.join(ks_b, "web.pem"), "web.branch.example", 300)
    closed = closed_port()
    port_a, port_b = free_port(), free_port()
    a = Daemon("prom-a", [("hq-users", ks_a, "labels: { team: customs, site: tokyo }")],
               extra="metrics_listen: 127.0.0.1:%d\n" % port_a)
    with open(a.config) as f:
        text = f.read().replace("probes: { targets: [] }\n", """probes:
  interval: 1s
  timeout: 2s
  failures_before_alert: 1
  targets:
    - { name: closed, host: 127.0.0.1, port: %d, tls: false }
maintenance: []
""" % closed.getsockname()[1])
    with open(a.config, "w") as f:
        f.write(text)
    b = Daemon("prom-b", [("branch-tls", ks_b, "labels: { team: infra, site: osaka }")],
               extra="metrics_listen: 127.0.0.1:%d\n"
                     "metrics: { labels: [subject, issuer, serial, sha256], not_before: true,"
                     " state_series: true }\n" % port_b)
    receiver = Receiver()
    am = prom = None
    inst_a, inst_b = "127.0.0.1:%d" % port_a, "127.0.0.1:%d" % port_b
    try:
        cases += 1
        check(a.start() and b.start(), "both kigend ready: %s %s" % (a.stderr(), b.stderr()))
        am, am_port, prom, prom_port = start_stack(work, [port_a, port_b], receiver)

        # Both instances are scraped, with their own labels and options.
        cases += 1
        up = wait_until(lambda: len([r for r in api(prom_port, "/api/v1/query", query="up == 1")
                                     .get("data", {}).get("result", [])]) == 2, 60, 0.5)
        check(up, "Prometheus scrapes both kigend: %s" % prom.output())
        got = api(prom_port, "/api/v1/query",
                  query='count by (instance) ({__name__=~"kigen_cert_.*"})')
        per = {r["metric"]["instance"]: int(r["value"][1])
               for r in got.get("data", {}).get("result", [])}
        # A: 3 locations x 2 series; B: 1 location x (3 dates + 6 states).
        check(per == {inst_a: 6, inst_b: 9}, "series per instance (lean A, full B): %s" % per)

        # The certificate in its renewal window: one notification for both copies.
        cases += 1
        firing = wait_until(lambda: receiver.find("firing", "KigenCertificateRenewalOpen",
                                                  instance=inst_a, subject_cn="sato.example.co.jp"),
                            60, 0.2)
        if check(firing, "KigenCertificateRenewalOpen reaches the receiver: %s\n%s"
                 % (receiver.notifications, prom.output())):
            n = firing[0]
            labels = n["commonLabels"]
            check(labels.get("keystore") == "hq-users" and labels.get("team") == "customs" and
                  labels.get("issuer_cn") == "sato.example.co.jp" and "sha256" not in labels,
                  "the alert's labels: %s" % labels)
            paths = sorted(x["labels"]["path"] for x in n["alerts"])
            check(paths == sorted(os.path.join(ks_a, p) for p in ("sato.pem", "sato-copy.pem")),
                  "one notification holds both copies: %s" % paths)
            check(not receiver.find("firing", "KigenCertificateRenewalOpen",
                                    subject_cn="ito.example.co.jp"),
                  "no alert for a certificate far from its end")
            check(not receiver.find("firing", "KigenCertificateCritical") and
                  not receiver.find("firing", "KigenCertificateExpired"),
                  "renewal open only, not critical or expired")

        # The probe target on a closed port.
        cases += 1
        down = wait_until(lambda: receiver.find("firing", "KigenProbeDown", instance=inst_a), 60,
                          0.2)
        check(down and down[0]["commonLabels"].get("name") == "closed",
              "KigenProbeDown reaches the receiver: %s" % (down or receiver.notifications))

        # Renewed in place: the same series move a year on, and the alert resolves.
        cases += 1
        for name in ("sato.pem", "sato-copy.pem"):
            openssl_cert(os.path.join(ks_a, name), "sato.example.co.jp", 365)
        resolved = wait_until(lambda: receiver.find("resolved", "KigenCertificateRenewalOpen",
                                                    instance=inst_a,
                                                    subject_cn="sato.example.co.jp"), 90, 0.2)
        check(resolved, "the renewal resolves the alert: %s" % receiver.notifications)
        # ... with the same series: a renewal moves a value, it makes no new series.
        seen = api(prom_port, "/api/v1/query",
                   query='count(count_over_time(kigen_cert_not_after_seconds{instance="%s"}[1h]))'
                   % inst_a)
        seen = [int(r["value"][1]) for r in seen.get("data", {}).get("result", [])]
        check(seen == [3], "3 locations, 3 not_after series over the renewal: %s" % seen)
        firings = receiver.find("firing", "KigenCertificateRenewalOpen", instance=inst_a,
                                subject_cn="sato.example.co.jp")
        check(len(firings) == 1, "one firing notification for the group, not one per copy or "
              "per evaluation: %d" % len(firings))

        # B stops: kigen absent for B's instance, not A's.
        cases += 1
        b.stop()
        gone = wait_until(lambda: receiver.find("firing", "KigenDown", instance=inst_b), 60, 0.2)
        check(gone, "KigenDown for the stopped instance: %s" % receiver.notifications)
        check(not receiver.find("firing", "KigenDown", instance=inst_a), "A is not reported down")

        # The Grafana dashboard's queries, against what this Prometheus holds now.
        cases += 1
        n = check_dashboard(prom_port, [inst_a, inst_b])
        print("ok: the dashboard's %d queries run and its main panels have data" % n)
    finally:
        for p in (prom, am):
            if p:
                p.stop()
        receiver.close()
        a.close()
        b.close()
        closed.close()
        for d in (work, ks_a, ks_b):
            shutil.rmtree(d, ignore_errors=True)
    finish("test_prometheus", cases)


if __name__ == "__main__":
    main()
