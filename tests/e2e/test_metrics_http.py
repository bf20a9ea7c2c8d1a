#!/usr/bin/env python3
"""End to end: the daemon's HTTP metrics endpoint (metrics_listen, SPEC §10), scraped by the
real curl and checked by Prometheus' own promtool.

The series follow the keystore as files come and go; a reload to another port moves the
listener; a reload with a bad address, or a port another program holds, is rejected and the
old listener keeps serving; a daemon that cannot listen at start carries on without the
endpoint; a scraper that never finishes its request does not stall a stop.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kigentest import Daemon, cert, check, fact, finish  # noqa: E402

NOW = "2026-11-24T12:00:00Z"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
cases = 0


def require_tools():
    missing = [t for t in ("curl", "promtool") if not shutil.which(t)]
    if missing:
        print("FAIL: %s not installed: this test needs them (Debian: apt-get install curl "
              "prometheus)" % " and ".join(missing))
        raise SystemExit(1)


def free_port():
    """A loopback port nobody listens on right now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scrape(port, timeout=10):
    """curl -i http://127.0.0.1:PORT/metrics: (curl's exit status, HTTP status, headers, body)."""
    p = subprocess.run(["curl", "-sS", "-i", "--max-time", str(timeout),
                        "http://127.0.0.1:%d/metrics" % port], capture_output=True)
    if p.returncode != 0:
        return p.returncode, None, {}, p.stderr.decode("utf-8", "replace")
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return 0, int(lines[0].split()[1]), headers, body.decode("utf-8")


def drain(d):
    """Reads what the daemon sent to its notify and syslog sockets, which it must not find
    full: sd_notify() would block the daemon's loop on a test that does not read."""
    d.notify.read(0.0)
    d.syslog.read(0.0)


def wait_scrape(d, port, pred, timeout):
    """Scrapes until pred(status, body) holds; the last scrape either way."""
    end = time.time() + timeout
    while True:
        drain(d)
        rc, status, headers, body = scrape(port)
        if (rc == 0 and pred(status, body)) or time.time() > end:
            return rc, status, headers, body
        time.sleep(0.2)


def promtool(body):
    p = subprocess.run(["promtool", "check", "metrics"], input=body.encode(),
                       capture_output=True)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def cn(dn):
    """The first CN of a fixture's RFC 2253 name (the fixtures have no escapes)."""
    return re.search(r"(?:^|[,+])CN=([^,+]*)", dn).group(1)


def not_after_line(ks, path, leaf):
    """The lean default of SPEC §10: no serial or fingerprint, the common names."""
    labels = ('keystore="%s",path="%s",entry="0",subject_cn="%s",issuer_cn="%s",team="customs"'
              % (ks, path, cn(fact(leaf, "subject")), cn(fact(leaf, "issuer"))))
    return "kigen_cert_not_after_seconds{%s} %s" % (labels, fact(leaf, "not_after"))


def has_line(body, line):
    return line in body.split("\n")


def certificates(body):
    """The sum of kigen_certificates{state=...}: how many certificates the text counts."""
    return sum(int(m) for m in re.findall(r'^kigen_certificates\{state="[a-z_]+"\} (\d+)$', body,
                                          re.M))


def write_listen(d, ks, listen):
    d.write_config([("naccs", ks, "labels: { team: customs }")],
                   "socket: %s/kigen.sock\nmetrics_listen: '%s'\n" % (d.dir, listen))


def reload(d, accepted):
    """SIGHUP; the daemon's log line that answers it (accepted or rejected), or None.

    The log line rather than the config.* alert: reload writes it before anything is queued,
    saved or delivered.
    """
    marker = "reloaded" if accepted else "Configuration rejected"
    before = d.stderr().count(marker)
    drain(d)
    d.signal(signal.SIGHUP)
    end = time.time() + 10
    while time.time() < end:
        drain(d)
        lines = [x for x in d.stderr().splitlines() if marker in x]
        if len(lines) > before:
            return lines[-1]
        time.sleep(0.05)
    return None


def case_scrape_follow_and_reload():
    """Served from the inventory, follows changes, moves with a reload, survives bad ones."""
    global cases
    cases += 1
    ks = tempfile.mkdtemp(prefix="kigen-http-ks-")
    shutil.copy(cert("ok.pem"), os.path.join(ks, "tanaka.pem"))
    port = free_port()
    d = Daemon("http", [], now=NOW)
    write_listen(d, ks, "127.0.0.1:%d" % port)
    busy = None
    try:
        check(d.start(), "READY=1: %s" % d.stderr())
        rc, status, headers, body = wait_scrape(d, port, lambda s, b: s == 200, 5)
        if check(rc == 0 and status == 200, "GET /metrics after READY=1: %r %r %s"
                 % (rc, status, body[:300])):
            check(headers.get("content-type") == CONTENT_TYPE, "content type %r" % headers)
            check(certificates(body) == 1, "kigen_certificates counts 1: %s" % body)
            line = not_after_line("naccs", os.path.join(ks, "tanaka.pem"), "ok")
            check(has_line(body, line), "%s in:\n%s" % (line, body))
            prc, out = promtool(body)
            check(prc == 0, "promtool check metrics: %s" % out)

        # A file dropped in and one removed: the series follow without a restart.
        shutil.copy(cert("expired.pem"), os.path.join(ks, "sato.pem"))
        line = not_after_line("naccs", os.path.join(ks, "sato.pem"), "expired")
        rc, status, _, body = wait_scrape(d, port, lambda s, b: has_line(b, line), 10)
        check(has_line(body, line) and certificates(body) == 2,
              "a new file shows in the metrics: %s" % body[-500:])
        os.unlink(os.path.join(ks, "tanaka.pem"))
        rc, status, _, body = wait_scrape(d, port, lambda s, b: certificates(b) == 1, 10)
        check(certificates(body) == 1 and "tanaka.pem" not in body,
              "a removed file leaves the metrics: %s" % body[-500:])
        prc, out = promtool(body)
        check(prc == 0, "promtool check metrics after the changes: %s" % out)

        # A reload to another port moves the listener.
        old, port = port, free_port()
        write_listen(d, ks, "127.0.0.1:%d" % port)
        check(reload(d, True), "reloaded for the new port: %s" % d.stderr())
        rc, status, _, body = wait_scrape(d, port, lambda s, b: s == 200, 10)
        check(rc == 0 and status == 200 and has_line(body, line),
              "the new port serves the metrics: %r %r %s" % (rc, status, body[-300:]))
        rc, _, _, err = scrape(old, timeout=3)
        check(rc == 7, "the old port is closed (curl exit 7): %r %s" % (rc, err))

        # A malformed address is rejected; the listener stays where it was.
        write_listen(d, ks, "9793")
        a = reload(d, False)
        check(a and "metrics_listen" in a, "the rejection names metrics_listen: %r" % a)
        rc, status, _, body = scrape(port)
        check(rc == 0 and status == 200 and has_line(body, line),
              "the old listener serves after a rejected reload: %r %r" % (rc, status))

        # A port another program holds: rejected with the reason, the old listener stays.
        busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        write_listen(d, ks, "127.0.0.1:%d" % taken)
        a = reload(d, False)
        check(a and "cannot listen on 127.0.0.1:%d: Address already in use" % taken in a,
              "the rejection says the port is in use: %r" % a)
        rc, status, _, body = scrape(port)
        check(rc == 0 and status == 200 and has_line(body, line),
              "the old listener serves after a port in use: %r %r" % (rc, status))

        # Without metrics_listen the endpoint goes.
        d.write_config([("naccs", ks, "labels: { team: customs }")],
                       "socket: %s/kigen.sock\n" % d.dir)
        check(reload(d, True), "reloaded without metrics_listen")
        end = time.time() + 5
        while scrape(port, timeout=3)[0] != 7 and time.time() < end:
            time.sleep(0.2)
        check(scrape(port, timeout=3)[0] == 7, "no listener once metrics_listen is gone")
    finally:
        if busy:
            busy.close()
        d.close()
        shutil.rmtree(ks, ignore_errors=True)


def case_cannot_listen_at_start():
    """The port is taken at start: a warning, and the daemon watches certificates anyway."""
    global cases
    cases += 1
    ks = tempfile.mkdtemp(prefix="kigen-http-busy-")
    shutil.copy(cert("expired.pem"), os.path.join(ks, "sato.pem"))
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    taken = busy.getsockname()[1]
    d = Daemon("http-busy", [], now=NOW)
    write_listen(d, ks, "127.0.0.1:%d" % taken)
    try:
        check(d.start(), "READY=1 although the metrics port is taken: %s" % d.stderr())
        check("cannot listen on 127.0.0.1:%d: Address already in use" % taken in d.stderr(),
              "the reason is logged: %s" % d.stderr())
        check(d.wait_alert(lambda a: a["msgid"] == "cert.expired", 5),
              "alerts still go out without the endpoint")
        # Once the port is free, a reload brings the endpoint up.
        busy.close()
        busy = None
        check(reload(d, True), "reloaded once the port is free")
        rc, status, _, body = wait_scrape(d, taken, lambda s, b: s == 200, 10)
        check(rc == 0 and status == 200 and certificates(body) == 1,
              "served after the reload: %r %r %s" % (rc, status, body[-300:]))
    finally:
        if busy:
            busy.close()
        d.close()
        shutil.rmtree(ks, ignore_errors=True)


def case_stop_with_a_stalled_scraper():
    """A client that never finishes its request does not hold up SIGTERM."""
    global cases
    cases += 1
    ks = tempfile.mkdtemp(prefix="kigen-http-stop-")
    shutil.copy(cert("ok.pem"), os.path.join(ks, "tanaka.pem"))
    port = free_port()
    d = Daemon("http-stop", [], now=NOW)
    write_listen(d, ks, "127.0.0.1:%d" % port)
    stalled = None
    try:
        check(d.start(), "READY=1: %s" % d.stderr())
        if not check(wait_scrape(d, port, lambda s, b: s == 200, 5)[1] == 200, "served"):
            return
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(b"GET /metr")
        rc, status, _, _ = scrape(port)
        check(rc == 0 and status == 200, "served beside a stalled client")
        t0 = time.time()
        check(d.stop() == 0, "SIGTERM stops cleanly with a stalled client connected")
        check(time.time() - t0 < 8, "and promptly: %.1f s" % (time.time() - t0))
    finally:
        if stalled:
            stalled.close()
        d.close()
        shutil.rmtree(ks, ignore_errors=True)


def main():
    require_tools()
    case_scrape_follow_and_reload()
    case_cannot_listen_at_start()
    case_stop_with_a_stalled_scraper()
    finish("test_metrics_http", cases)


if __name__ == "__main__":
    main()
