#!/usr/bin/env python3
"""End to end: a keystore whose root goes away and comes back (issue #12, SPEC §4).

The real kigend watches a keystore directory while it is renamed away and back, and while a
share (a tmpfs, bind-mounted in a mount namespace of the test's own) is unmounted and mounted
again, with a restart in between. Alerts are read back from the daemon's syslog socket, the
report from its status socket. What must hold:

  - exactly one scan.error keystore_unavailable while the root is away, and no cert.gone;
  - the certificates are still listed, with last_seen at the time they were last read;
  - nothing already sent is sent again when the root is back;
  - a file deleted while the root was away is cert.gone once it is back;
  - all of that also when every evaluation is cut into slices.

Usage: test_unavailable.py [CASE ...]   (all cases by default)
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kigentest import (Daemon, PrivateMount, cert, check, fact, finish, need,  # noqa: E402
                       scratch, wait_until)
from kigensock import request  # noqa: E402

NOW = "2026-11-24T12:00:00Z"  # the fixtures' reference instant
LEAVES = ("critical", "expired", "renewal_open")
STATE_EVENTS = ("cert.critical", "cert.expired", "cert.renewal_open", "cert.threshold")
cases = 0


class Estate:
    """Three certificates in a keystore directory, watched by a daemon with a socket."""

    def __init__(self, name, ks, prefix=(), env=None):
        self.ks = ks
        self.prefix = prefix
        self.env = env
        self.sock = os.path.join(scratch(name), "kigen.sock")
        self.d = Daemon(name, [("naccs", ks)], extra="socket: %s\n" % self.sock, now=NOW)
        self.sha = {leaf: fact(leaf, "sha256") for leaf in LEAVES}

    def start(self):
        return check(self.d.start(prefix=self.prefix, env=self.env),
                     "READY=1: %s" % self.d.stderr()[-500:])

    def events(self, event, **sd):
        return [a for a in self.d.alerts(0.05) if a["msgid"] == event and
                all(a["sd"].get(k) == v for k, v in sd.items())]

    def quiet(self, seconds=1.5):
        """Waits until no alert has come for seconds; returns them all."""
        n = -1
        while n != len(self.d.alerts(seconds)):
            n = len(self.d.alerts(0))
        return self.d.alerts(0)

    def report(self):
        return request(self.sock, {"cmd": "list"})

    def close(self):
        self.d.close()
        shutil.rmtree(os.path.dirname(self.sock), ignore_errors=True)


def fill(path):
    for leaf in LEAVES:
        shutil.copy(cert(leaf + ".pem"), os.path.join(path, leaf + ".pem"))


def expect_first_alerts(e):
    check(wait_until(lambda: all(e.events(ev) for ev in
                                 ("cert.critical", "cert.expired", "cert.renewal_open")), 15),
          "the first alerts: %s" % [a["msgid"] for a in e.d.alerts(0)])
    return len(e.quiet())


def expect_away(e, since_n):
    """While the root is away: one keystore_unavailable, nothing gone, still listed."""
    t0 = time.time()
    hits = wait_until(lambda: e.events("scan.error", error="keystore_unavailable"), 5)
    print("away: keystore_unavailable after %.2f s" % (time.time() - t0), flush=True)
    check(len(hits) == 1, "one scan.error keystore_unavailable within 5 s: %s"
          % [(a["msgid"], a["sd"]) for a in e.d.alerts(0)[since_n:]])
    check(hits and hits[0]["sd"].get("paths") == e.ks, "the error names the root: %s"
          % (hits and hits[0]["sd"]))
    rep = e.report()
    check(rep and len(rep["certificates"]) == 3, "still listed while away: %s"
          % (rep and rep["summary"]))
    check(rep and all(c["last_seen"] < rep["generated_at"] for c in rep["certificates"]),
          "last_seen is the time they were last read: %s" %
          (rep and [(c["last_seen"], rep["generated_at"]) for c in rep["certificates"]]))
    check(rep and [(x["error"], x["path"]) for x in rep["errors"]] ==
          [("keystore_unavailable", e.ks)], "the report's error: %s" % (rep and rep["errors"]))


def expect_back(e, n_before_away, gone_leaf):
    """Back: cert.gone for the file deleted meanwhile, and nothing sent again."""
    t0 = time.time()
    hits = wait_until(lambda: e.events("cert.gone"), 5)
    print("back: cert.gone after %.2f s" % (time.time() - t0), flush=True)
    check([a["sd"].get("sha256") for a in hits] == [e.sha[gone_leaf]],
          "cert.gone within 5 s for the file deleted while away only: %s"
          % [a["sd"] for a in hits])
    after = e.quiet()[n_before_away:]
    again = [a["msgid"] for a in after if a["msgid"] in STATE_EVENTS]
    check(not again, "nothing already sent is sent again: %s" % again)
    check(len([a for a in after if a["msgid"] == "scan.error"]) <= 1,
          "keystore_unavailable said once: %s" % [a["sd"] for a in after])
    rep = e.report()
    check(rep and len(rep["certificates"]) == 2 and not rep["errors"],
          "the report is whole again: %r" % ((rep and (rep["summary"], rep["errors"])),))
    check(rep and all(c["last_seen"] == rep["generated_at"] for c in rep["certificates"]),
          "live records are seen now")


def case_rename(restart, env=None):
    """The keystore directory moved away and back, with a restart in between or not.

    env {"KIGEN_TEST_EVAL_SLICE_NS": "1"} makes every evaluation take several loop iterations
    (src/evaluator.c), as those of 100,000 certificates do, with the watches served between.
    """
    global cases
    cases += 1
    top = scratch("away")
    ks, away = os.path.join(top, "naccs"), os.path.join(top, "naccs.moved")
    os.makedirs(ks)
    fill(ks)
    e = Estate("away", ks, env=env)
    try:
        e.start()
        n0 = expect_first_alerts(e)
        os.rename(ks, away)
        expect_away(e, n0)
        if restart:
            check(e.d.stop() == 0, "stops cleanly while the root is away")
            e.start()
            time.sleep(1)
            check(not e.events("cert.gone"), "no cert.gone after a restart while away")
            check(len(e.events("scan.error")) == 1, "no second scan.error after the restart")
        os.unlink(os.path.join(away, "expired.pem"))
        os.rename(away, ks)
        expect_back(e, n0, "expired")
    finally:
        e.close()
        shutil.rmtree(top, ignore_errors=True)


def case_unmount():
    """A share unmounted under the running daemon, restarted, then mounted again."""
    global cases
    cases += 1
    need("unshare", "nsenter", "mount", "umount")
    top = scratch("share")
    ks = os.path.join(top, "naccs")
    os.makedirs(ks)
    share = PrivateMount(os.path.join(top, "server"), "4m")
    e = Estate("share", ks, prefix=share.enter())
    bind = share.enter() + ["mount", "--bind", share.mountpoint, ks]
    try:
        fill(share.path())
        subprocess.run(bind, check=True)
        e.start()
        n0 = expect_first_alerts(e)
        subprocess.run(share.enter() + ["umount", ks], check=True)
        expect_away(e, n0)
        os.unlink(share.path("critical.pem"))
        check(e.d.stop() == 0, "stops cleanly while the share is away")
        e.start()
        time.sleep(1)
        check(not e.events("cert.gone"), "no cert.gone after a restart with the share away")
        subprocess.run(bind, check=True)
        expect_back(e, n0, "critical")
    finally:
        e.close()
        share.close()
        shutil.rmtree(top, ignore_errors=True)


CASES = {
    "rename": lambda: case_rename(False),
    "rename_restart": lambda: case_rename(True),
    "rename_sliced": lambda: case_rename(True, {"KIGEN_TEST_EVAL_SLICE_NS": "1"}),
    "unmount": case_unmount,
}


def main():
    if os.geteuid() != 0:
        print("FAIL: test_unavailable needs root (mount namespaces)")
        sys.exit(1)
    for name in sys.argv[1:] or list(CASES):
        t0 = time.time()
        CASES[name]()
        print("case %s: %.1f s" % (name, time.time() - t0), flush=True)
    finish("test_unavailable", cases)


if __name__ == "__main__":
    main()
