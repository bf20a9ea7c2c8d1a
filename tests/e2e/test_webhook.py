#!/usr/bin/python3
"""End to end: chat webhooks (SPEC §3 alerts.webhooks, §12) from a real kigend, loopback only.

A Python HTTPS server with a certificate of a test CA that openssl makes here receives the POSTs;
a real tinyproxy tunnels them with CONNECT. Checks the three formats as received, the events
filter, the proxy settings ("" ignores https_proxy, "env" follows it, http://host:port), TLS
verification, a 500 answer logged as a failure, a URL that cannot be read refused at start and
on reload, and that the URL's token reaches no log, socket answer, alert or state file.

Durable deliveries (SPEC §12): a server answering 500 for a while gets each alert once with 200
(backoff shortened by the test-only KIGEN_TEST_RETRY_* variables); a restart resumes what is
pending; a reload that changes the URL sends the pending alerts to the new one; a webhook removed
and brought back resumes its files; one never answered is given up, counted in the metric and in
kigenctl status; the delivery files hold no token.
"""
import http.server
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kigentest import (KIGEND, Daemon, cert, check, finish, free_port, need,  # noqa: E402
                       wait_until)
from kigensock import raw_answer, request  # noqa: E402

KIGENCTL = os.environ["KIGENCTL"]
NOW = "2026-11-24T12:00:00Z"
TOKEN = "SECRET-TOKEN-123"
cases = 0


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def make_ca(d):
    """A test CA and a server certificate for 127.0.0.1 and localhost, by openssl."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", d + "/ca.key", "-out", d + "/ca.pem", "-days", "2",
        "-subj", "/CN=Kigen Webhook Test CA", "-addext", "basicConstraints=critical,CA:true",
        "-addext", "keyUsage=critical,keyCertSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", d + "/server.key", "-out", d + "/server.csr", "-subj", "/CN=127.0.0.1")
    write(d + "/server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
          "extendedKeyUsage=serverAuth\nbasicConstraints=CA:false\n")
    run("x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", d + "/server.ext", "-out", d + "/server.pem")


class Hooks:
    """An HTTPS server on loopback that records each POST and answers with the next status of
    its path's script (200 once the script is used up)."""

    def __init__(self, d):
        self.posts = []
        self.scripts = {}
        self.lock = threading.Lock()
        hooks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with hooks.lock:
                    script = hooks.scripts.get(self.path, [])
                    status = script.pop(0) if script else 200
                    hooks.posts.append({"path": self.path, "body": body,
                                        "type": self.headers.get("Content-Type"),
                                        "status": status})
                answer = b"ok" if status == 200 else b"no"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(d + "/server.pem", d + "/server.key")
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name):
        return "https://127.0.0.1:%d/hooks/%s/%s" % (self.port, name, TOKEN)

    def received(self, name, pred=lambda p: True):
        with self.lock:
            return [p for p in self.posts
                    if p["path"] == "/hooks/%s/%s" % (name, TOKEN) and pred(p)]

    def wait(self, name, pred=lambda p: True, timeout=15):
        return wait_until(lambda: self.received(name, pred), timeout)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Tinyproxy:
    """The real tinyproxy on a loopback port, allowing CONNECT to one port only."""

    def __init__(self, d, connect_port):
        need("tinyproxy")
        self.port = free_port()
        self.conf = os.path.join(d, "tinyproxy.conf")
        self.logpath = os.path.join(d, "tinyproxy.log")
        write(self.conf, "Port %d\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\n"
              "ConnectPort %d\nLogLevel Connect\nMaxClients 10\n" % (self.port, connect_port))
        self.log = open(self.logpath, "wb")
        self.proc = subprocess.Popen(["tinyproxy", "-d", "-c", self.conf], stdout=self.log,
                                     stderr=self.log)
        if not wait_until(lambda: self._listening(), 10):
            raise SystemExit("tinyproxy did not start: %s" % self.text())

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def text(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def connects(self, port):
        return self.text().count("CONNECT 127.0.0.1:%d" % port)

    def close(self):
        self.proc.terminate()
        self.proc.wait()
        self.log.close()


def webhook(name, source, fmt, extra=""):
    return "    - { name: %s, url: %s, format: %s%s }\n" % (name, source, fmt, extra)


def daemon(name, ks, hooks_yaml, now=NOW):
    d = Daemon(name, [("naccs", ks)], now=now, extra="  webhooks:\n" + hooks_yaml)
    with open(d.config, "a") as f:
        f.write("socket: %s\n" % os.path.join(d.dir, "kigen.sock"))
    return d


def stopped(d):
    """Stops the daemon: status 0, and nothing AddressSanitizer found (in the asan build)."""
    rc = d.stop()
    check(rc == 0 and "Sanitizer" not in d.stderr(), "kigend stops cleanly (%s): %s"
          % (rc, d.stderr()[-3000:]))


def leaks(d, extra_texts=()):
    """Where the token shows: the daemon's log, every socket answer, alerts, state files."""
    where = []
    if TOKEN in d.stderr():
        where.append("stderr")
    sock = os.path.join(d.dir, "kigen.sock")
    for req in ({"cmd": "status"}, {"cmd": "list"}, {"cmd": "probes"}, {"cmd": "metrics"},
                {"cmd": "show", "sha256": "0" * 64}):
        if TOKEN.encode() in raw_answer(sock, req):
            where.append("socket %s" % req["cmd"])
    for args in (["status"], ["list"], ["--json", "status"]):
        p = subprocess.run([KIGENCTL, "--socket", sock] + args, capture_output=True, text=True,
                           timeout=30)
        if TOKEN in p.stdout + p.stderr:
            where.append("kigenctl %s" % " ".join(args))
    if any(TOKEN in m for m in d.syslog.messages):
        where.append("syslog alerts")
    for root, _, files in os.walk(d.state):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                if TOKEN.encode() in fh.read():
                    where.append(os.path.join(root, f))
    for what, text in extra_texts:
        if TOKEN in text:
            where.append(what)
    return where


def keystore(tmp, name, file_name="a.pem"):
    """A keystore directory holding one expired certificate: a cert.expired at start."""
    ks = os.path.join(tmp, "ks-" + name)
    os.makedirs(ks)
    shutil.copy(cert("expired.pem"), os.path.join(ks, file_name))
    return ks


def case_formats(tmp, hooks, ca):
    """slack, teams and json as received; events; "" ignores https_proxy; untrusted TLS fails."""
    global cases
    cases += 1
    ks = keystore(tmp, "formats", "山田.pem")
    creds = os.path.join(tmp, "creds")
    os.makedirs(creds)
    write(os.path.join(tmp, "slack.url"), hooks.url("slack") + "\n")
    write(os.path.join(creds, "teams-url"), hooks.url("teams"))
    write(os.path.join(tmp, "untrusted.url"), hooks.url("untrusted") + "\n")
    dead = free_port()  # nobody listens: a proxy taken from the environment would fail
    d = daemon("webhook", ks,
               webhook("chat", "{ file: %s/slack.url }" % tmp, "slack", ", ca_file: %s" % ca) +
               webhook("teams", "{ credential: teams-url }", "teams", ", ca_file: %s" % ca) +
               webhook("json", "{ env: KIGEN_TEST_HOOK_URL }", "json",
                       ', ca_file: %s, proxy: "", events: [config.reloaded]' % ca) +
               webhook("untrusted", "{ file: %s/untrusted.url }" % tmp, "slack",
                       ", events: [cert.expired]"))
    env = {"CREDENTIALS_DIRECTORY": creds, "KIGEN_TEST_HOOK_URL": hooks.url("json"),
           "https_proxy": "http://127.0.0.1:%d" % dead, "HTTPS_PROXY": "http://127.0.0.1:%d" % dead}
    try:
        check(d.start(env=env), "READY=1: %s" % d.stderr())
        got = hooks.wait("slack", lambda p: b"cert.expired" in p["body"])
        if check(got, "slack POST of cert.expired: %s / %s" % (hooks.posts, d.stderr())):
            p = got[0]
            check(p["type"] == "application/json", "Content-Type: %s" % p["type"])
            body = json.loads(p["body"].decode("utf-8"))
            check(list(body) == ["text"], "slack body has text only: %s" % body)
            text = body["text"]
            check("Event: cert.expired" in text and "Days left: -" in text and
                  "Not after: " in text and "山田.pem" in text and "re-issue" in text,
                  "slack text has the message and facts: %s" % text)
        got = hooks.wait("teams", lambda p: b"cert.expired" in p["body"])
        if check(got, "teams POST of cert.expired (URL from a credential)"):
            body = json.loads(got[0]["body"].decode("utf-8"))
            att = body["attachments"][0]
            card = att["content"]
            facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
            check(body["type"] == "message" and
                  att["contentType"] == "application/vnd.microsoft.card.adaptive" and
                  card["type"] == "AdaptiveCard" and card["version"] == "1.4" and
                  card["body"][0]["type"] == "TextBlock" and facts.get("Event") == "cert.expired"
                  and facts.get("Paths", "").endswith("山田.pem"),
                  "teams Adaptive Card: %s" % body)
        fail = wait_until(lambda: "webhook:untrusted" in d.stderr(), 15)
        check(fail and "Cannot deliver webhook:untrusted for cert.expired" in d.stderr() and
              "certificate" in d.stderr() and not hooks.received("untrusted"),
              "a server the system store does not trust gets nothing, logged: %s" % d.stderr())
        time.sleep(1)
        check(not hooks.received("json"), "json takes config.reloaded only: %s"
              % hooks.received("json"))
        d.signal(signal.SIGHUP)
        got = hooks.wait("json")
        if check(got, "json POST of config.reloaded (URL from the environment, https_proxy "
                 "ignored with proxy: \"\")"):
            body = json.loads(got[0]["body"].decode("utf-8"))
            check(body["event"] == "config.reloaded" and body["KIGEN_EVENT"] == "config.reloaded"
                  and isinstance(body["priority"], int) and "reloaded" in body["message"],
                  "json body: %s" % body)
        check(hooks.wait("slack", lambda p: b"config.reloaded" in p["body"]),
              "an unchanged webhook keeps working after a reload")
        time.sleep(1)
        check(len(hooks.received("slack", lambda p: b"cert.expired" in p["body"])) == 1 and
              len(hooks.received("json")) == 1, "nothing sent twice: %s" % hooks.posts)
        with open("/proc/%d/environ" % d.proc.pid, "rb") as f:
            check(TOKEN.encode() not in f.read(), "the env: URL left /proc/PID/environ")
        where = leaks(d)
        check(not where, "the token shows nowhere: %s" % where)
        stopped(d)
    finally:
        d.close()


def case_proxy(tmp, hooks, ca):
    """Through the real tinyproxy: proxy: http://host:port, and proxy: env with https_proxy."""
    global cases
    cases += 1
    ks = keystore(tmp, "proxy")
    write(os.path.join(tmp, "viaproxy.url"), hooks.url("viaproxy"))
    write(os.path.join(tmp, "viaenv.url"), hooks.url("viaenv"))
    tp = Tinyproxy(tmp, hooks.port)
    d = daemon("webhook-proxy", ks,
               webhook("viaproxy", "{ file: %s/viaproxy.url }" % tmp, "json",
                       ", ca_file: %s, proxy: \"http://127.0.0.1:%d\"" % (ca, tp.port)) +
               webhook("viaenv", "{ file: %s/viaenv.url }" % tmp, "json",
                       ", ca_file: %s, proxy: env" % ca))
    try:
        check(d.start(env={"https_proxy": "http://127.0.0.1:%d" % tp.port, "no_proxy": "",
                           "NO_PROXY": ""}), "READY=1: %s" % d.stderr())
        a = hooks.wait("viaproxy", lambda p: b"cert.expired" in p["body"])
        b = hooks.wait("viaenv", lambda p: b"cert.expired" in p["body"])
        check(a and b, "both delivered through the proxy: %s / %s" % (hooks.posts, d.stderr()))
        check(wait_until(lambda: tp.connects(hooks.port) >= 2, 5),
              "tinyproxy saw two CONNECTs to the server: %s" % tp.text())
        where = leaks(d, [("tinyproxy's log", tp.text())])
        check(not where, "the token shows nowhere: %s" % where)
        stopped(d)
    finally:
        d.close()
        tp.close()


def case_failures(tmp, hooks, ca):
    """500 is a failure, logged without the token; the next alert is delivered with 200 while the
    failed one waits for its retry (a minute: the default backoff)."""
    global cases
    cases += 1
    ks = keystore(tmp, "fail")
    write(os.path.join(tmp, "flaky.url"), hooks.url("flaky"))
    hooks.scripts["/hooks/flaky/%s" % TOKEN] = [500]
    d = daemon("webhook-fail", ks, webhook("flaky", "{ file: %s/flaky.url }" % tmp, "slack",
                                           ", ca_file: %s" % ca))
    try:
        check(d.start(), "READY=1: %s" % d.stderr())
        check(hooks.wait("flaky"), "the first POST arrives")
        logged = wait_until(lambda: "HTTP 500" in d.stderr(), 10)
        check(logged and "Cannot deliver webhook:flaky for cert.expired" in d.stderr() and
              "retrying in 60 s" in d.stderr(),
              "the 500 is logged with the sink's name: %s" % d.stderr())
        d.signal(signal.SIGHUP)
        got = hooks.wait("flaky", lambda p: p["status"] == 200 and b"config.reloaded" in p["body"])
        check(got, "the next alert is delivered with 200")
        where = leaks(d)
        check(not where, "the token shows nowhere: %s" % where)

        # A URL that cannot be read is refused on reload; the running configuration stays.
        good = open(d.config).read()
        with open(d.config, "w") as f:
            f.write(good.replace("%s/flaky.url" % tmp, "%s/missing.url" % tmp))
        d.signal(signal.SIGHUP)
        hits = d.wait_alert(lambda a: a["msgid"] == "config.rejected", 10)
        check(hits and "webhook 'flaky'" in hits[0]["msg"] and "missing.url" in hits[0]["msg"],
              "config.rejected names the webhook and its source: %s" % hits)
        check(hooks.wait("flaky", lambda p: b"config.rejected" in p["body"]),
              "the running webhook still sends")
        # An http:// URL is refused too, without quoting it.
        write(os.path.join(tmp, "plain.url"), hooks.url("flaky").replace("https:", "http:"))
        with open(d.config, "w") as f:
            f.write(good.replace("%s/flaky.url" % tmp, "%s/plain.url" % tmp))
        d.syslog.messages.clear()
        d.signal(signal.SIGHUP)
        hits = d.wait_alert(lambda a: a["msgid"] == "config.rejected", 10)
        check(hits and "not an https:// URL" in hits[0]["msg"], "http:// refused: %s" % hits)
        where = leaks(d)
        check(not where, "the token shows nowhere: %s" % where)
        stopped(d)
    finally:
        d.close()

    # At start: the daemon does not start without its webhook's URL, and says why.
    cases += 1
    d = daemon("webhook-missing", ks, webhook("gone", "{ credential: nowhere }", "slack"))
    try:
        p = subprocess.run([KIGEND, "--config", d.config, "--now", NOW], capture_output=True,
                           text=True, timeout=30)
        check(p.returncode == 1 and "webhook 'gone'" in p.stderr and "credential 'nowhere'"
              in p.stderr and "Sanitizer" not in p.stderr,
              "no start without the URL (%d): %s" % (p.returncode, p.stderr))
    finally:
        d.close()


def ok_posts(hooks, name, event):
    return hooks.received(name, lambda p: p["status"] == 200 and event.encode() in p["body"])


def delivery_files(d):
    """The pending and done files of the webhook queues in state_dir/deliveries."""
    dd = os.path.join(d.state, "deliveries")
    if not os.path.isdir(dd):
        return []
    return sorted(f for f in os.listdir(dd) if f.startswith("webhook:") and f.endswith(".json"))


def case_durable(tmp, hooks, ca):
    """SPEC §12: retried until 200, each alert once; a restart resumes; a changed URL takes the
    pending alerts; a removed webhook's files resume when it comes back."""
    global cases
    cases += 1
    ks = keystore(tmp, "durable")
    urlfile = os.path.join(tmp, "durable.url")
    write(urlfile, hooks.url("durable"))
    first, moved = "/hooks/durable/%s" % TOKEN, "/hooks/moved/%s" % TOKEN
    hooks.scripts[first] = [500] * 3
    env = {"KIGEN_TEST_RETRY_FIRST_MS": "200", "KIGEN_TEST_RETRY_MAX_MS": "800"}
    line = webhook("durable", "{ file: %s }" % urlfile, "slack", ", ca_file: %s" % ca)
    d = daemon("webhook-durable", ks, line)
    sock = os.path.join(d.dir, "kigen.sock")
    good = None

    def waitd(pred, timeout):
        """wait_until, reading the notify and syslog sockets meanwhile: unread, their queues
        (10 datagrams) fill and sd_notify() blocks the daemon."""
        def drained():
            d.notify.read(0)
            d.syslog.read(0)
            return pred()
        return wait_until(drained, timeout)

    def queue():
        try:
            return request(sock, {"cmd": "status"}).get("deliveries", {}).get(
                "webhook:durable", {})
        except OSError:
            return {}

    def files_text():
        out = b""
        for f in delivery_files(d):
            with open(os.path.join(d.state, "deliveries", f), "rb") as fh:
                out += fh.read()
        return out

    def settled():
        """Nothing pending: kigend heard every answer (the server records a POST before it
        answers, and a webhook removed before its answer is read sends it again later)."""
        return waitd(lambda: queue().get("pending") == 0, 15)

    def reload_with(text):
        with open(d.config, "w") as f:
            f.write(text)
        d.signal(signal.SIGHUP)

    try:
        check(d.start(env=env), "READY=1: %s" % d.stderr())
        good = open(d.config).read()
        # 500, 500, 500, then 200: retried with backoff, delivered once.
        check(waitd(lambda: ok_posts(hooks, "durable", "cert.expired"), 20) and settled(),
              "cert.expired arrives after three 500s: %s" % d.stderr()[-3000:])
        tries = hooks.received("durable", lambda p: b"cert.expired" in p["body"])
        check([p["status"] for p in tries] == [500, 500, 500, 200],
              "three failed POSTs, then one delivered: %s" % [p["status"] for p in tries])
        check("Cannot deliver webhook:durable for cert.expired" in d.stderr() and
              "HTTP 500" in d.stderr() and "Delivered webhook:durable for cert.expired"
              in d.stderr(), "the attempts are logged: %s" % d.stderr()[-3000:])

        # A restart while a delivery waits: resumed from its file, delivered once.
        hooks.scripts[first] = [500] * 100000
        d.signal(signal.SIGHUP)  # config.reloaded, a new alert
        check(waitd(lambda: queue().get("pending", 0) >= 1, 15) and
              waitd(lambda: b"config.reloaded" in files_text(), 5),
              "the waiting POST shows in status and as a file: %s %s" % (queue(),
                                                                        delivery_files(d)))
        text = files_text()
        check(TOKEN.encode() not in text and b"/hooks/" not in text and b"127.0.0.1" not in text,
              "the delivery file holds the alert, not the URL: %r" % text[:400])
        check(all(f.startswith("webhook:durable-") for f in delivery_files(d)),
              "files named after the sink: %s" % delivery_files(d))
        d.stop()
        d.notify.messages.clear()
        check(d.start(env=env), "kigend restarts with a POST waiting: %s" % d.stderr())
        check(waitd(lambda: "Resuming 1 pending webhook:durable deliveries" in d.stderr(),
                         10), "the pending POST is resumed: %s" % d.stderr()[-2000:])
        waitd(lambda: False, 1)  # a few more 500s
        hooks.scripts[first] = []
        check(waitd(lambda: ok_posts(hooks, "durable", "config.reloaded"), 20) and settled(),
              "config.reloaded arrives once the server is back")

        # A changed URL on reload: the pending alert goes to the new one.
        hooks.scripts[first] = [500] * 100000
        reload_with(good.replace(urlfile, urlfile + ".missing"))  # config.rejected, pending
        check(waitd(lambda: queue().get("pending", 0) >= 1, 15), "config.rejected waits")
        write(urlfile, hooks.url("moved"))
        reload_with(good)
        check(waitd(lambda: ok_posts(hooks, "moved", "config.rejected"), 20) and settled(),
              "the pending alert goes to the new URL: %s" % d.stderr()[-2000:])

        # Removed by a reload while a delivery waits, then back: its file resumes.
        hooks.scripts[moved] = [500] * 100000
        write(os.path.join(tmp, "plain.url"), hooks.url("x").replace("https:", "http:"))
        reload_with(good.replace(urlfile, os.path.join(tmp, "plain.url")))  # another rejection
        check(waitd(lambda: b"not an https" in files_text() and hooks.received(
            "moved", lambda p: b"not an https" in p["body"]), 15), "the rejection waits")
        reload_with(good.replace(line, ""))
        check(waitd(lambda: "webhook:durable" not in request(sock, {"cmd": "status"}).get(
            "deliveries", {}), 10), "a removed webhook leaves status")
        check(b"not an https" in files_text() and not ok_posts(hooks, "moved", "not an https"),
              "its pending file stays: %s" % delivery_files(d))
        n = len(hooks.received("moved"))
        waitd(lambda: False, 1)
        check(len(hooks.received("moved")) == n, "nothing POSTed while it is gone")
        hooks.scripts[moved] = []
        reload_with(good)
        check(waitd(lambda: ok_posts(hooks, "moved", "not an https"), 20) and settled(),
              "the webhook back resumes its file: %s" % d.stderr()[-2000:])

        waitd(lambda: False, 2)
        bodies = Counter(p["body"] for p in hooks.posts
                         if p["status"] == 200 and p["path"] in (first, moved))
        # Each reload is an alert of its own (KIGEN_ALERT_ID) with the same text: at most one
        # per accepted reload; every other alert exactly once.
        reloads = sum(v for k, v in bodies.items() if b"reloaded" in k)
        check(1 <= reloads <= 3, "config.reloaded once per accepted reload: %d" % reloads)
        check(bodies and max(v for k, v in bodies.items() if b"reloaded" not in k) == 1,
              "each alert arrived exactly once: %s" % [(k[:60], v) for k, v in bodies.items()])
        st = queue()
        check(st.get("pending") == 0 and st.get("failed") == 0, "status after: %s" % st)
        where = leaks(d)
        check(not where, "the token shows nowhere: %s" % where)
        stopped(d)
    finally:
        d.close()


def case_given_up(tmp, hooks, ca):
    """A server that never says 2xx: given up after retry_for, logged, counted in the metric, the
    socket status and kigenctl status."""
    global cases
    cases += 1
    ks = keystore(tmp, "never")
    write(os.path.join(tmp, "never.url"), hooks.url("never"))
    hooks.scripts["/hooks/never/%s" % TOKEN] = [503] * 100000
    env = {"KIGEN_TEST_RETRY_FIRST_MS": "100", "KIGEN_TEST_RETRY_MAX_MS": "200",
           "KIGEN_TEST_RETRY_FOR_MS": "1000"}
    d = daemon("webhook-never", ks, webhook("never", "{ file: %s/never.url }" % tmp, "json",
                                            ", ca_file: %s" % ca))
    sock = os.path.join(d.dir, "kigen.sock")
    try:
        check(d.start(env=env), "READY=1: %s" % d.stderr())

        def failed():
            try:
                return request(sock, {"cmd": "status"})["deliveries"]["webhook:never"]
            except (OSError, KeyError):
                return {}
        check(wait_until(lambda: failed().get("failed", 0) >= 1, 20),
              "the delivery is given up: %s / %s" % (failed(), d.stderr()[-2000:]))
        check("Giving up the webhook:never delivery for cert.expired" in d.stderr() and
              "HTTP 503" in d.stderr(), "giving up is logged: %s" % d.stderr()[-2000:])
        n = len(hooks.received("never"))
        check(n >= 3, "it was tried several times: %d" % n)
        metrics = request(sock, {"cmd": "metrics"}).get("metrics", "")
        check('kigen_alert_deliveries_failed_total{sink="webhook:never"} 1' in metrics,
              "the metric counts it: %s" % [x for x in metrics.splitlines() if "deliver" in x])
        p = subprocess.run([KIGENCTL, "--socket", sock, "status"], capture_output=True,
                           text=True, timeout=30)
        check("webhook:never delivery" in p.stdout and "0 pending" in p.stdout and
              "1 given up" in p.stdout, "kigenctl status shows it: %s" % p.stdout)
        where = leaks(d)
        check(not where, "the token shows nowhere: %s" % where)
        stopped(d)
    finally:
        d.close()


def main():
    need("openssl", "tinyproxy")
    tmp = "/tmp/kigen-webhook-%d" % os.getpid()
    os.makedirs(tmp)
    os.chmod(tmp, 0o755)
    make_ca(tmp)
    ca = os.path.join(tmp, "ca.pem")
    hooks = Hooks(tmp)
    try:
        case_formats(tmp, hooks, ca)
        case_proxy(tmp, hooks, ca)
        case_failures(tmp, hooks, ca)
        case_durable(tmp, hooks, ca)
        case_given_up(tmp, hooks, ca)
    finally:
        hooks.close()
        shutil.rmtree(tmp, ignore_errors=True)
    finish("test_webhook", cases)


main()
