#!/usr/bin/python3
"""End to end: revocation and CRL files (SPEC §13), loopback only, every part real.

tests/gen/revocation_ca.sh makes a CA with `openssl ca` that revokes two certificates; a Python
HTTP server on 127.0.0.1 serves its CRLs (and counts every request, with its Host and Via
headers); `openssl ocsp` answers for the certificates that name no CRL; the real tinyproxy
forwards when revocation.proxy says so.

Checked with kigend --once: good and revoked by CRL, good and revoked by OCSP, a CRL signed by
another key (unknown), a URL on a host revocation.hosts leaves out (unknown, and no request
reaches the server), the server down (unknown, exit status not raised by it), a stale CRL
(unknown until a fresh one is fetched), the answers cached in state_dir (no second fetch), the
same through tinyproxy, CRL files in PEM and DER listed fresh or stale, and revocation off
unless a rule asks (no "revocation" key, no request). With the daemon: cert.revoked once per
certificate, crl.stale once per CRL, one scan.error per URL and kind, and nothing again after a
restart; kigenctl show prints the answer and kigenctl list --state revoked finds both.

`openssl ocsp -port` listens on every address (it takes no host); only loopback talks to it.
"""
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kigentest import KIGEND, Daemon, check, finish, free_port, need, wait_until  # noqa: E402

KIGENCTL = os.environ["KIGENCTL"]
SRC = os.environ.get("KIGEN_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
cases = 0


class CrlServer:
    """Serves the files of a dict on 127.0.0.1; remembers (path, Host, Via) of every GET."""

    def __init__(self, port):
        self.files = {}
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with outer.lock:
                    outer.requests.append((self.path, self.headers.get("Host", ""),
                                           self.headers.get("Via", "")))
                    body = outer.files.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, pred=lambda r: True):
        with self.lock:
            return len([r for r in self.requests if pred(r)])

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Tinyproxy:
    """The real tinyproxy on a loopback port."""

    def __init__(self, d):
        self.port = free_port()
        conf = os.path.join(d, "tinyproxy.conf")
        self.logpath = os.path.join(d, "tinyproxy.log")
        with open(conf, "w") as f:
            f.write("Port %d\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nLogLevel Info\n"
                    "MaxClients 10\nViaProxyName \"kigen-test-proxy\"\n" % self.port)
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(["tinyproxy", "-d", "-c", conf], stdout=self.log,
                                     stderr=self.log)
        if not wait_until(lambda: listening(self.port), 10):
            raise SystemExit("tinyproxy did not start")

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


def listening(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def read(path):
    with open(path, "rb") as f:
        return f.read()


RULES = """rules:
  - match: { issuer: "*Kigen Revocation Test CA*" }
    revocation: true
    reissue_note: "re-issue takes a business day"
"""


def revocation_yaml(proxy=""):
    return ('revocation:\n  hosts: ["127.0.0.1"]\n  interval: 1s\n  proxy: "%s"\n' % proxy)


def once(work, name, keystores, extra, expect_rc=None):
    """kigend --once --format json on keystores [(name, path)]: (exit status, report)."""
    cfg = os.path.join(work, name + ".yaml")
    state = os.path.join(work, name + "-state")
    os.makedirs(state, exist_ok=True)
    with open(cfg, "w") as f:
        f.write("state_dir: %s\ntimezone: UTC\nprobes: { targets: [] }\nkeystores:\n" % state)
        for k, p in keystores:
            f.write("  - { name: %s, path: %s }\n" % (k, p))
        f.write(extra)
    p = subprocess.run([KIGEND, "--config", cfg, "--once", "--format", "json"],
                       capture_output=True, timeout=120)
    try:
        report = json.loads(p.stdout)
    except ValueError:
        report = None
    check(report is not None, "%s: a JSON report (%s)" % (name, p.stderr[-2000:]))
    if expect_rc is not None:
        check(p.returncode == expect_rc, "%s: exit status %d, want %d (%s)"
              % (name, p.returncode, expect_rc, p.stderr[-1000:]))
    return p.returncode, report or {"certificates": [], "crls": [], "summary": {}}


def by_name(report):
    return {os.path.basename(r["path"]): r for r in report["certificates"]}


def rev(report, name):
    return by_name(report).get(name + ".pem", {}).get("revocation") or {}


def check_answers(report, tag):
    """What every case says in one run with the server up, the OCSP responder up."""
    global cases
    cases += 1
    r = by_name(report)
    for name, status, source in (("good", "good", "crl"), ("revoked", "revoked", "crl"),
                                 ("ocsp-good", "good", "ocsp"),
                                 ("ocsp-revoked", "revoked", "ocsp")):
        a = rev(report, name)
        check(a.get("status") == status and a.get("source") == source,
              "%s: %s is %s by %s: %s" % (tag, name, status, source, a))
        check(a.get("error") is None, "%s: %s has no error: %s" % (tag, name, a))
        check(isinstance(a.get("checked_at"), str) and a["checked_at"].endswith("Z"),
              "%s: %s checked_at in RFC 3339: %s" % (tag, name, a))
    check(rev(report, "revoked").get("reason") == "keyCompromise"
          and (rev(report, "revoked").get("revoked_at") or "").endswith("Z"),
          "%s: the CRL's reason and date: %s" % (tag, rev(report, "revoked")))
    check(rev(report, "ocsp-revoked").get("reason") == "superseded",
          "%s: the OCSP answer's reason: %s" % (tag, rev(report, "ocsp-revoked")))
    check(rev(report, "good").get("revoked_at") is None and rev(report, "good").get("reason")
          is None, "%s: a good certificate has no revocation date or reason" % tag)
    check(r["revoked.pem"]["state"] == "revoked" and r["ocsp-revoked.pem"]["state"] == "revoked",
          "%s: state revoked (the first row of SPEC §5)" % tag)
    check(r["good.pem"]["state"] == "ok", "%s: a good certificate keeps its state" % tag)
    # Down: curl cannot connect; through a proxy, the proxy answers 500 or 502.
    down = "HTTP status 50" if tag == "proxy" else "connect"
    for name, word in (("badsig", "signed"), ("foreign", "revocation.hosts"),
                       ("down", down), ("stale", "stale")):
        a = rev(report, name)
        check(a.get("status") == "unknown" and word in (a.get("error") or ""),
              "%s: %s is unknown, saying '%s': %s" % (tag, name, word, a))
        check(r[name + ".pem"]["state"] == "ok", "%s: %s unknown does not change the state"
              % (tag, name))
    check(report["summary"].get("revoked") == 2, "%s: summary counts revoked: %s"
          % (tag, report["summary"]))


def main():
    global cases
    need("openssl", "tinyproxy")
    work = "/tmp/kigen-revocation-%d" % os.getpid()
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    http_port, down_port, ocsp_port = free_port(), free_port(), free_port()
    gen = os.path.join(SRC, "tests", "gen", "revocation_ca.sh")
    subprocess.run(["sh", gen, os.path.join(work, "gen"), str(http_port), str(down_port),
                    str(ocsp_port)], check=True)
    g = os.path.join(work, "gen")
    ks = os.path.join(work, "ks")
    os.makedirs(ks)
    for f in os.listdir(os.path.join(g, "certs")):
        shutil.copy(os.path.join(g, "certs", f), ks)
    shutil.copy(os.path.join(g, "ca", "ca.pem"), os.path.join(ks, "ca.pem"))
    crls = os.path.join(work, "crls")
    os.makedirs(crls)
    for f in ("ca.crl", "ca.crl.pem", "stale.crl", "stale.crl.pem"):
        shutil.copy(os.path.join(g, "crl", f), crls)

    server = CrlServer(http_port)
    server.files = {"/ca.crl": read(os.path.join(g, "crl", "ca.crl")),
                    "/bad.crl": read(os.path.join(g, "crl", "bad.crl")),
                    "/stale.crl": read(os.path.join(g, "crl", "stale.crl"))}
    ocsp_log = open(os.path.join(work, "ocsp.log"), "wb")
    ocsp = subprocess.Popen(["openssl", "ocsp", "-index", os.path.join(g, "ca", "index.txt"),
                             "-port", str(ocsp_port), "-rsigner", os.path.join(g, "ca", "ca.pem"),
                             "-rkey", os.path.join(g, "ca", "ca.key"),
                             "-CA", os.path.join(g, "ca", "ca.pem"), "-ndays", "1"],
                            stdout=ocsp_log, stderr=ocsp_log)
    proxy = None
    try:
        # Not by connecting: the responder serves one connection at a time, and waits on it.
        check(wait_until(lambda: b"waiting for OCSP client" in read(ocsp_log.name), 10),
              "openssl ocsp listens")

        # Revocation off unless a rule asks: the §6 document as before, and no request.
        cases += 1
        rc, report = once(work, "off", [("rev", ks)], revocation_yaml())
        check(all("revocation" not in r for r in report["certificates"]),
              "no rule asks: no record has a \"revocation\"")
        check("revoked" not in report["summary"], "no rule asks: the summary as in SPEC §6")
        check(server.count() == 0, "no rule asks: nothing fetched (%d)" % server.count())

        # Every case in one run; the foreign host never asked.
        rc, report = once(work, "all", [("rev", ks), ("crls", crls)], RULES + revocation_yaml(),
                          expect_rc=2)
        check_answers(report, "once")
        cases += 1
        check(server.count(lambda r: r[1].startswith("localhost")) == 0,
              "a host revocation.hosts leaves out gets no request: %s" % server.requests)
        check(server.count(lambda r: r[0] == "/ca.crl") == 1,
              "one fetch of a CRL per run, however many certificates name it: %s"
              % server.requests)
        ca = by_name(report)["ca.pem"]
        check(ca["revocation"]["status"] == "unknown", "the CA itself names no CRL: unknown")

        # CRL files: listed, sorted by next_update then path, stale or fresh; exit 1 for stale.
        cases += 1
        got = [(os.path.basename(c["path"]), c["state"]) for c in report["crls"]]
        check(got == [("stale.crl", "stale"), ("stale.crl.pem", "stale"), ("ca.crl", "fresh"),
                      ("ca.crl.pem", "fresh")], "the crls array: %s" % got)
        c0 = report["crls"][0]
        check(c0["issuer"] == "CN=Kigen Revocation Test CA,O=Test NACCS,C=JP"
              and c0["this_update"] == "2026-01-01T00:00:00Z"
              and c0["next_update"] == "2026-02-01T00:00:00Z" and c0["keystore"] == "crls",
              "a CRL file's facts: %s" % c0)
        rc, only_crls = once(work, "crlfiles", [("crls", crls)], "", expect_rc=1)
        check(only_crls["certificates"] == [] and len(only_crls["crls"]) == 4,
              "CRL files alone: no record, four CRLs, exit 1 for the stale ones")

        # The cache: a second run in the same state_dir asks nothing the first one kept.
        cases += 1
        before = server.count(lambda r: r[0] == "/ca.crl")
        rc, report = once(work, "all", [("rev", ks), ("crls", crls)], RULES + revocation_yaml(),
                          expect_rc=2)
        check_answers(report, "cached")
        check(server.count(lambda r: r[0] == "/ca.crl") == before,
              "a fresh CRL in the cache is not fetched again")

        # A stale CRL stays unknown until a fresh one is fetched (not before interval: 1s).
        cases += 1
        server.files["/stale.crl"] = read(os.path.join(g, "crl", "ca.crl"))
        time.sleep(1.2)
        rc, report = once(work, "all", [("rev", ks), ("crls", crls)], RULES + revocation_yaml())
        check(rev(report, "stale").get("status") == "good",
              "the fresh CRL fetched again: %s" % rev(report, "stale"))
        server.files["/stale.crl"] = read(os.path.join(g, "crl", "stale.crl"))

        # The server down: unknown, and the exit status is the dates' (0).
        cases += 1
        only = os.path.join(work, "only")
        os.makedirs(only)
        for f in ("good.pem", "down.pem"):
            shutil.copy(os.path.join(ks, f), only)
        shutil.copy(os.path.join(ks, "ca.pem"), only)
        rc, report = once(work, "down", [("rev", only)], RULES + revocation_yaml(), expect_rc=0)
        check(rev(report, "down").get("status") == "unknown", "server down: unknown")

        # Through the real tinyproxy, with a state_dir of its own (nothing cached).
        cases += 1
        proxy = Tinyproxy(work)
        before = server.count()
        rc, report = once(work, "proxy", [("rev", ks)],
                          RULES + revocation_yaml("http://127.0.0.1:%d" % proxy.port),
                          expect_rc=2)
        check_answers(report, "proxy")
        check(server.count(lambda r: "kigen-test-proxy" in r[2]) >= 3,
              "the CRLs came through tinyproxy: %s" % server.requests[before:])

        # The daemon: each alert once, nothing again after a restart.
        cases += 1
        d = Daemon("revocation", [("rev", ks), ("crls", crls)])
        with open(d.config, "a") as f:
            f.write(RULES + revocation_yaml() + "socket: %s\n" % os.path.join(d.dir, "k.sock"))
        try:
            check(d.start(), "kigend starts: %s" % d.stderr()[-2000:])
            got = d.wait_alert(lambda a: a["msgid"] == "cert.revoked", 60)
            time.sleep(3)
            alerts = d.alerts(0.5)
            revoked = [a for a in alerts if a["msgid"] == "cert.revoked"]
            subjects = sorted(a["sd"].get("subject", "") for a in revoked)
            check(len(revoked) == 2 and "CN=revoked" in subjects[1] and
                  "CN=ocsp-revoked" in subjects[0], "cert.revoked once per certificate: %s"
                  % subjects)
            check(all(a["sd"].get("revoked_at", "").endswith("Z") for a in revoked),
                  "cert.revoked carries KIGEN_REVOKED_AT: %s" % revoked)
            check(all("re-issue takes a business day" in a["msg"] for a in revoked),
                  "the message names the re-issue note: %s" % [a["msg"] for a in revoked])
            stale = [a for a in alerts if a["msgid"] == "crl.stale"]
            check(len(stale) == 1, "crl.stale once for the CRL (two files, one CRL): %s" % stale)
            errs = [a["sd"].get("paths", "") for a in alerts if a["msgid"] == "scan.error"]
            check(sorted(errs) == sorted(["http://127.0.0.1:%d/bad.crl" % http_port,
                                          "http://127.0.0.1:%d/ca.crl" % down_port,
                                          "http://127.0.0.1:%d/stale.crl" % http_port]),
                  "one scan.error per URL and kind: %s" % errs)
            show = subprocess.run([KIGENCTL, "--socket", os.path.join(d.dir, "k.sock"), "show",
                                   revoked[0]["sd"].get("sha256", "")], capture_output=True,
                                  text=True, timeout=30)
            check("revoked" in show.stdout and "checked" in show.stdout,
                  "kigenctl show prints the revocation status: %s" % show.stdout)
            lst = subprocess.run([KIGENCTL, "--socket", os.path.join(d.dir, "k.sock"), "list",
                                  "--state", "revoked", "--json"], capture_output=True,
                                 text=True, timeout=30)
            listed = json.loads(lst.stdout or "{}").get("certificates", [])
            check(len(listed) == 2 and lst.returncode == 2,
                  "kigenctl list --state revoked: %d rows, exit %d" % (len(listed),
                                                                      lst.returncode))
            check(d.stop() == 0, "kigend stops cleanly")
            n = len(d.alerts(0.2))
            check(d.start(), "kigend starts again")
            time.sleep(8)
            again = [a for a in d.alerts(0.5)[n:]
                     if a["msgid"] in ("cert.revoked", "crl.stale", "scan.error")]
            check(again == [], "nothing said again after a restart: %s" % again)
        finally:
            d.close()
    finally:
        server.close()
        ocsp.terminate()
        ocsp.wait()
        ocsp_log.close()
        if proxy:
            proxy.close()
        shutil.rmtree(work, ignore_errors=True)
    finish("revocation", cases)


if __name__ == "__main__":
    main()
