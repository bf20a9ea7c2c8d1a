#!/usr/bin/env python3
"""End to end: the wall clock jumps forward and back under a running daemon.

CLOCK_REALTIME has no namespace and a test must not set the machine's clock, so the daemon
runs under libfaketime (Debian's faketime package) with its time read from a file on every
call (FAKETIME_TIMESTAMP_FILE, FAKETIME_NO_CACHE): writing the file jumps the daemon's wall
clock while its monotonic clock, and so libuv's timers, run on untouched. The kernel's
notice of a clock change (timerfd TFD_TIMER_CANCEL_ON_SET) does not come under libfaketime:
a rescan request makes the daemon look at the clock again, as that notice would.

Checked: a jump forward past a certificate's end alerts once (cert.expired, with the steps
it jumped over at most once each); a jump back says nothing already said; forward again,
still nothing twice (reminders are a year apart here); the daemon stays up, answers, reports
the jumped clock, and does not spin on a deadline that moved into the past.

Not run in sanitizer builds (libfaketime deadlocks under AddressSanitizer); CMake registers it
for the regular build only.
"""
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kigentest import Daemon, cert, check, fact, finish  # noqa: E402
from kigensock import request  # noqa: E402

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
STEP_RE = re.compile(r"notice at (\S+) before")  # a cert.threshold's step, from its message
cases = 0


def set_clock(path, instant):
    """The daemon's wall clock is at instant from now on ("YYYY-MM-DD hh:mm:ss", UTC)."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write("@%s\n" % instant)
    os.rename(tmp, path)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rescan(d, sock):
    """A rescan, and its evaluation, done: the daemon has looked at its clock."""
    before = request(sock, {"cmd": "status"})["scans"]
    request(sock, {"cmd": "rescan"})
    end = time.time() + 20
    while time.time() < end:
        a = request(sock, {"cmd": "status"})
        if a["scans"] > before:
            return a
        time.sleep(0.05)
    return None


def case_jumps():
    global cases
    cases += 1
    top = tempfile.mkdtemp(prefix="kigen-clock-")
    ks = os.path.join(top, "ks")
    os.makedirs(ks)
    shutil.copy(cert("ok.pem"), ks)            # tanaka, ends 2029-02-01
    shutil.copy(cert("renewal_open.pem"), ks)  # suzuki, ends 2026-12-14T12:00:00Z
    suzuki = fact("renewal_open", "sha256")
    clock = os.path.join(top, "clock")
    sock = os.path.join(top, "kigen.sock")
    d = Daemon("clock", [("ks", ks)], extra="  reminder_every: 365d\nsocket: %s\n" % sock)
    env = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": clock,
           "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    try:
        # 2026-10-01: both certificates are fine (suzuki 74 days before its end, before the
        # first notify_before step, 60d); nothing to say.
        set_clock(clock, "2026-10-01 00:00:00")
        check(d.start(env=env), "READY=1 under libfaketime: %s" % d.stderr()[-300:])
        time.sleep(1)
        check(not d.alerts(0.5), "nothing to say on 2026-10-01: %s" % d.alerts())
        status = request(sock, {"cmd": "status"})
        check(status is not None and status.get("summary", {}).get("ok") == 2,
              "both ok on 2026-10-01: %s" % status)

        # Forward past suzuki's end: expired, once.
        set_clock(clock, "2026-12-20 00:00:00")
        status = rescan(d, sock)
        check(status is not None and status["summary"]["expired"] == 1,
              "after the jump forward, one expired: %s" % (status and status["summary"]))
        hits = d.wait_alert(lambda a: a["msgid"] == "cert.expired" and
                            a["sd"].get("sha256") == suzuki, 10)
        check(len(hits) == 1, "one cert.expired after the jump forward: %d" % len(hits))

        # Back to the renewal window: what was said is not said again.
        set_clock(clock, "2026-11-20 00:00:00")
        status = rescan(d, sock)
        check(status is not None and status["summary"]["renewal_open"] == 1 and
              status["summary"]["expired"] == 0,
              "after the jump back, renewal open again: %s" % (status and status["summary"]))
        t0, cpu0 = time.time(), cpu_seconds(d.proc.pid)
        time.sleep(3)
        used = cpu_seconds(d.proc.pid) - cpu0
        check(used < 0.5 * (time.time() - t0),
              "idle after the jump back, no spinning on a deadline in the past: %.2f s CPU "
              "in %.1f s" % (used, time.time() - t0))

        # Forward again, past the end and a few days more.
        set_clock(clock, "2026-12-24 00:00:00")
        check(rescan(d, sock) is not None, "a rescan after the second jump forward")
        time.sleep(1)
        seen = {}
        for a in d.alerts(0.5):
            step = STEP_RE.search(a["msg"]) if a["msgid"] == "cert.threshold" else None
            key = (a["msgid"], a["sd"].get("sha256"), step and step.group(1))
            seen[key] = seen.get(key, 0) + 1
        twice = {k: n for k, n in seen.items() if n > 1}
        check(not twice, "no alert twice across the jumps: %s" % twice)
        check(seen.get(("cert.expired", suzuki, None)) == 1, "cert.expired exactly once: %s" % seen)
        print("alerts across the jumps: %s" % sorted((k[0], k[2]) for k in seen))
        check(all(k[1] == suzuki for k in seen if k[0].startswith("cert.")),
              "tanaka (ends 2029) was never alerted: %s" % seen)
        lst = request(sock, {"cmd": "list"})
        days = [c["days_left"] for c in (lst or {}).get("certificates", [])
                if c["sha256"] == suzuki]
        check(days == [-10], "days_left follows the jumped clock (2026-12-24): %s" % days)
        check(d.proc.poll() is None, "still running")
        check(d.stop() == 0, "stops cleanly")
    finally:
        d.close()
        shutil.rmtree(top, ignore_errors=True)


def main():
    if not os.path.exists(LIBFAKETIME):
        print("FAIL: %s is missing (apt-get install faketime)" % LIBFAKETIME)
        sys.exit(1)
    case_jumps()
    finish("test_clock", cases)


if __name__ == "__main__":
    main()
