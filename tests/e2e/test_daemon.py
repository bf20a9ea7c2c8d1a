#!/usr/bin/env python3
"""End to end: the resident daemon under a real NOTIFY_SOCKET and syslog socket.

Covers sd_notify, change-driven rescans (drop, change, remove, a burst of 1,000 files), a
threshold crossed under an injected clock, restart and reload with no duplicate, a broken reload,
a corrupt state file, an unwritable state directory and an exec hook that hangs.
"""
import os
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kigentest import Daemon, Journald, cert, check, fact, finish  # noqa: E402

NOW = "2026-11-24T12:00:00Z"
cases = 0


def events(d, name):
    return [a for a in d.alerts() if a["msgid"] == name]


def case_lifecycle():
    """sd_notify, first alerts, reload, restart: nothing twice."""
    global cases
    cases += 1
    ks = os.path.join("/tmp", "kigen-ks-%d" % os.getpid())
    os.makedirs(ks, exist_ok=True)
    shutil.copy(cert("expired.pem"), os.path.join(ks, "takahashi.pem"))
    d = Daemon("life", [("naccs", ks)], now=NOW)
    try:
        check(d.start(), "READY=1 after the first scan: %s" % d.stderr())
        check(any(m.startswith("STATUS=Watching 1 certificates") for m in d.notify.read(0.2)),
              "STATUS= with counts: %s" % d.notify.messages)
        hits = d.wait_alert(lambda a: a["msgid"] == "cert.expired", 5)
        if check(hits, "cert.expired delivered to syslog"):
            sd = hits[0]["sd"]
            check(sd.get("sha256") == fact("expired", "sha256"), "sha256 field %r" % sd)
            check(sd.get("paths") == os.path.join(ks, "takahashi.pem"), "paths field %r" % sd)
            check(sd.get("days_left") == "-24", "days_left field %r" % sd)
            check("re-issue" in hits[0]["msg"], "message says re-issue: %s" % hits[0]["msg"])
            check(hits[0]["pri"] == 3 * 8 + 3, "facility daemon, priority err: %d" % hits[0]["pri"])
        d.notify.messages.clear()
        d.signal(signal.SIGHUP)
        check(d.wait_alert(lambda a: a["msgid"] == "config.reloaded", 5), "config.reloaded")
        msgs = d.notify.read(0.5)
        check("RELOADING=1" in msgs and msgs.index("RELOADING=1") < len(msgs) - 1 and
              any("READY=1" in m for m in msgs[msgs.index("RELOADING=1"):]),
              "RELOADING=1 then READY=1: %s" % msgs)
        time.sleep(1.5)
        check(len(events(d, "cert.expired")) == 1, "a reload sends nothing twice")

        # A broken configuration is rejected; the old one keeps running.
        good = open(d.config).read()
        with open(d.config, "a") as f:
            f.write("bogus_key: 1\n")
        d.signal(signal.SIGHUP)
        hits = d.wait_alert(lambda a: a["msgid"] == "config.rejected", 5)
        check(hits and "bogus_key" in hits[0]["msg"], "config.rejected names the problem")
        shutil.copy(cert("critical.pem"), os.path.join(ks, "sato.pem"))
        check(d.wait_alert(lambda a: a["msgid"] == "cert.critical", 5),
              "the old configuration still watches after a rejected reload")
        with open(d.config, "w") as f:
            f.write(good)

        d.notify.messages.clear()
        check(d.stop() == 0, "SIGTERM stops cleanly with status 0")
        check(any("STOPPING=1" in m for m in d.notify.read(0.2)), "STOPPING=1 on stop")
        before = len(d.alerts())
        check(d.start(), "READY=1 after a restart")
        time.sleep(2)
        check(len(d.alerts()) == before, "a restart sends nothing twice: %s"
              % [a["msgid"] for a in d.alerts()[before:]])
    finally:
        d.close()
        shutil.rmtree(ks, ignore_errors=True)


def case_changes():
    """Files dropped, changed, removed, and a burst of 1,000, seen within a second or so."""
    global cases
    cases += 1
    ks = os.path.join("/tmp", "kigen-ch-%d" % os.getpid())
    os.makedirs(os.path.join(ks, "sub"), exist_ok=True)
    d = Daemon("changes", [("ks", ks)], now=NOW)
    try:
        check(d.start(), "READY=1 on an empty keystore")
        # scan_interval is 1h: an alert within the wait means the watch saw the change (how
        # fast is measured by bench/daemon_bench.py, not asserted here).
        shutil.copy(cert("critical.pem"), os.path.join(ks, "sub", "sato.pem"))
        check(d.wait_alert(lambda a: a["msgid"] == "cert.critical", 10),
              "a dropped file is read without waiting for scan_interval")
        # The same location now holds a later certificate for the same subject.
        tmp = os.path.join(ks, "sub", ".sato.tmp")
        shutil.copy(cert("renewed.pem"), tmp)
        os.rename(tmp, os.path.join(ks, "sub", "sato.pem"))
        check(d.wait_alert(lambda a: a["msgid"] == "cert.renewed", 5), "cert.renewed")
        # A new directory is watched too.
        os.makedirs(os.path.join(ks, "new"))
        time.sleep(1.2)
        shutil.copy(cert("expired.pem"), os.path.join(ks, "new", "old.pem"))
        check(d.wait_alert(lambda a: a["msgid"] == "cert.expired", 5),
              "a file in a new directory is seen")
        os.unlink(os.path.join(ks, "new", "old.pem"))
        check(d.wait_alert(lambda a: a["msgid"] == "cert.gone", 5), "cert.gone on removal")
        # A burst of 1,000 files.
        d.notify.messages.clear()
        burst = os.path.join(ks, "burst")
        os.makedirs(burst)
        time.sleep(1.2)
        for i in range(1000):
            shutil.copy(cert("ok.pem"), os.path.join(burst, "c%04d.pem" % i))
        hits = d.notify.wait_for(lambda m: m.startswith("STATUS=Watching 1001 certificates"), 15)
        check(hits, "1,000 new files are all in the inventory: %s" % d.notify.messages[-2:])
    finally:
        d.close()
        shutil.rmtree(ks, ignore_errors=True)


def case_threshold_crossed():
    """A renewal window that opens while the daemon runs: the timer fires, no polling."""
    global cases
    cases += 1
    ks = os.path.join("/tmp", "kigen-th-%d" % os.getpid())
    os.makedirs(ks, exist_ok=True)
    shutil.copy(cert("renewal_open.pem"), os.path.join(ks, "suzuki.pem"))
    # suzuki ends 2026-12-14T12:00:00Z: its renewal window opens at 2026-11-16T12:00:00Z.
    d = Daemon("threshold", [("ks", ks)], now="2026-11-16T11:59:57Z")
    try:
        check(d.start(), "READY=1")
        early = d.wait_alert(lambda a: a["msgid"] == "cert.threshold", 3)
        check(early and "60d" in early[0]["msg"], "the 60d step already passed is announced")
        check(not events(d, "cert.renewal_open"), "nothing before the window opens")
        hits = d.wait_alert(lambda a: a["msgid"] == "cert.renewal_open", 8)
        check(hits, "cert.renewal_open when the window opens")
        check(d.wait_alert(lambda a: a["msgid"] == "cert.threshold" and "28d" in a["msg"], 3),
              "the 28d step")
        # No scan ran since READY=1: STATUS= follows the clock too.
        check(d.notify.wait_for(lambda m: m.startswith("STATUS=") and "1 renewal open" in m, 3),
              "STATUS= counts the certificate whose window opened: %s" % d.notify.messages)
    finally:
        d.close()
        shutil.rmtree(ks, ignore_errors=True)


def case_state_trouble():
    """A corrupt state file, an unwritable state directory, a hook that hangs."""
    global cases
    cases += 1
    ks = os.path.join("/tmp", "kigen-st-%d" % os.getpid())
    os.makedirs(ks, exist_ok=True)
    shutil.copy(cert("expired.pem"), os.path.join(ks, "a.pem"))
    d = Daemon("state", [("ks", ks)], extra='  exec: "sleep 600"\n', now=NOW)
    try:
        os.makedirs(d.state)
        with open(os.path.join(d.state, "state.jsonl"), "w") as f:
            f.write('{"kigen_state":1}\n{"cert": tru')
        check(d.start(), "READY=1 with a corrupt state file")
        check(d.wait_alert(lambda a: a["msgid"] == "cert.expired", 5),
              "alerts flow while an exec hook hangs")
        check("damaged" in d.stderr(), "the corrupt state is reported: %s" % d.stderr())
        check(os.path.exists(os.path.join(d.state, "state.jsonl.corrupt")),
              "the corrupt state is kept aside")
        time.sleep(1.5)
        d.stop()
        check(open(os.path.join(d.state, "state.jsonl")).read().startswith('{"kigen_state":1}'),
              "the state was replaced")
    finally:
        d.close()

    # Unwritable state directory: run as nobody, state dir owned by root.
    d = Daemon("rostate", [("ks", ks)])  # real time: the certificate expired in 2026-11
    try:
        os.makedirs(d.state, mode=0o755)
        for p in (d.dir, ks):
            os.chmod(p, 0o755)
        os.chmod(os.path.join(ks, "a.pem"), 0o644)
        os.chmod(d.config, 0o644)
        for s in (d.syslog.path, d.notify.path):
            os.chmod(s, 0o777)
        check(d.start(prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]),
              "READY=1 as an unprivileged user: %s" % d.stderr())
        check(d.wait_alert(lambda a: a["msgid"] == "cert.expired", 5),
              "an alert is delivered although its state cannot be written")
        time.sleep(0.5)
        check("Cannot write the alert state" in d.stderr(), "the write failure is logged: %s"
              % d.stderr())
    finally:
        d.close()
        shutil.rmtree(ks, ignore_errors=True)


def case_secrets():
    """A password from the environment opens the file and reaches no hook, log or alert."""
    global cases
    cases += 1
    ks = os.path.join("/tmp", "kigen-sec-%d" % os.getpid())
    os.makedirs(ks, exist_ok=True)
    shutil.copy(cert("modern.p12"), os.path.join(ks, "tanaka.p12"))
    shutil.copy(cert("expired.pem"), os.path.join(ks, "old.pem"))
    envfile = os.path.join(ks, "hook.env")
    d = Daemon("secrets", [("ks", ks, "passwords: [ { env: NACCS_PASS_CANARY } ]")],
               extra='  exec: "env > %s"\n' % envfile, now=NOW)
    try:
        check(d.start(env={"NACCS_PASS_CANARY": "Tanaka-2026"}), "READY=1")
        check(d.wait_alert(lambda a: a["msgid"] == "cert.expired", 5), "an alert")
        time.sleep(1)
        check(d.notify.wait_for(lambda m: "unreadable files" in m and "; 0 unreadable" in m, 3),
              "the PKCS#12 file opened with the environment's password: %s" % d.notify.messages)
        hook = open(envfile).read() if os.path.exists(envfile) else ""
        check("KIGEN_EVENT=cert.expired" in hook, "the hook ran with the alert's fields")
        check("Tanaka-2026" not in hook and "NACCS_PASS_CANARY" not in hook,
              "the password is not in the hook's environment")
        with open("/proc/%d/environ" % d.proc.pid, "rb") as f:
            check(b"Tanaka-2026" not in f.read(), "the password is not in /proc/PID/environ")
        check("Tanaka-2026" not in d.stderr(), "the password is not logged")
        check(all("Tanaka-2026" not in m for m in d.syslog.messages), "nor in any alert")
    finally:
        d.close()
        shutil.rmtree(ks, ignore_errors=True)


def journald_entries(jd, d, sha, event):
    """This daemon's entries for event about sha (the journal keeps earlier runs' too)."""
    entries = []
    end = time.time() + 10
    while time.time() < end and not entries:
        entries = [e for e in jd.entries(KIGEN_SHA256=sha, _PID=str(d.proc.pid))
                   if e.get("KIGEN_EVENT") == event]
        time.sleep(0.2)
    return entries


def case_journald():
    """Alerts in a real journald, read back with journalctl -o json."""
    global cases
    cases += 1
    ks = os.path.join("/tmp", "kigen-jd-%d" % os.getpid())
    os.makedirs(ks, exist_ok=True)
    shutil.copy(cert("renewal_open.pem"), os.path.join(ks, "suzuki.pem"))
    jd = Journald()
    d = Daemon("journald", [("naccs", ks, "labels: { team: customs }")], now=NOW,
               journald=True)
    sha = fact("renewal_open", "sha256")
    try:
        started = time.time()
        check(d.start(), "READY=1 with journald on")
        check(d.wait_alert(lambda a: a["msgid"] == "cert.renewal_open", 5), "syslog got it too")
        entries = journald_entries(jd, d, sha, "cert.renewal_open")
        if check(entries, "journalctl finds the cert.renewal_open entry"):
            e = entries[-1]
            check(e.get("MESSAGE_ID") == "00de9d89eafa4738a9f6717aca2d38d2", "MESSAGE_ID %r" % e)
            check(e.get("SYSLOG_IDENTIFIER") == "kigend", "SYSLOG_IDENTIFIER")
            check(e.get("PRIORITY") == "4", "PRIORITY warning: %r" % e.get("PRIORITY"))
            # The daemon's clock starts at NOW and runs: 20 days left (2026-12-14T12:00Z) within
            # its first second, 19 once a second has passed by the time it evaluates.
            late = int(time.time() - started) + 1
            allowed = {str((20 * 86400 - t) // 86400) for t in range(0, late + 1)}
            check(e.get("KIGEN_DAYS_LEFT") in allowed,
                  "KIGEN_DAYS_LEFT %r, not in %s" % (e.get("KIGEN_DAYS_LEFT"), sorted(allowed)))
            check(e.get("KIGEN_PATHS") == os.path.join(ks, "suzuki.pem"), "KIGEN_PATHS")
            check(e.get("KIGEN_LABEL_TEAM") == "customs", "KIGEN_LABEL_TEAM")
            check(e.get("KIGEN_NOT_AFTER") == "2026-12-14T12:00:00Z", "KIGEN_NOT_AFTER")
            check("renew it now" in e.get("MESSAGE", ""), "MESSAGE says what to do")
    finally:
        d.close()
        jd.stop()
        shutil.rmtree(ks, ignore_errors=True)


def case_journald_japanese():
    """language: en, then ja, under LANG=C.UTF-8: the journald MESSAGE is Japanese, every
    KIGEN_* field and MESSAGE_ID the same byte for byte."""
    global cases
    cases += 1
    ks = os.path.join("/tmp", "kigen-jdja-%d" % os.getpid())
    os.makedirs(ks, exist_ok=True)
    shutil.copy(cert("renewal_open.pem"), os.path.join(ks, "suzuki.pem"))
    sha = fact("renewal_open", "sha256")
    env = {"LANG": "C.UTF-8", "LC_ALL": "", "LC_MESSAGES": "", "LANGUAGE": ""}
    jd = Journald()
    seen = {}
    try:
        for lang in ("en", "ja"):
            d = Daemon("journald-" + lang, [("naccs", ks, "labels: { team: customs }")],
                       extra="language: %s\n" % lang, now=NOW, journald=True)
            try:
                check(d.start(env), "READY=1 with language: %s" % lang)
                entries = journald_entries(jd, d, sha, "cert.renewal_open")
                if check(entries, "journalctl finds the %s entry" % lang):
                    seen[lang] = entries[-1]
            finally:
                d.close()
        if check(len(seen) == 2, "an entry in each language"):
            en, ja = seen["en"], seen["ja"]
            check("renew it now" in en.get("MESSAGE", ""), "English: %r" % en.get("MESSAGE"))
            msg = ja.get("MESSAGE", "")
            check(isinstance(msg, str) and "デジタル証明書" in msg and "今すぐ更新してください" in msg
                  and "2026年12月14日(月) 12:00 UTC に有効期限が切れます" in msg,
                  "the MESSAGE is Japanese: %r" % msg)
            # The daemon's clock runs from NOW: a second may pass in one run and not the other.
            same = ("KIGEN_ALERT_ID", "KIGEN_DAYS_LEFT")
            fields = sorted(k for k in set(en) | set(ja)
                            if (k.startswith("KIGEN_") and k not in same) or k == "MESSAGE_ID")
            check(len(fields) > 8 and all(en.get(k) == ja.get(k) for k in fields),
                  "KIGEN_* fields identical: %r" % [(k, en.get(k), ja.get(k)) for k in fields
                                                    if en.get(k) != ja.get(k)])
            check(en.get("KIGEN_DAYS_LEFT") in ("19", "20") and
                  ja.get("KIGEN_DAYS_LEFT") in ("19", "20"), "KIGEN_DAYS_LEFT")
    finally:
        jd.stop()
        shutil.rmtree(ks, ignore_errors=True)


def main():
    if os.geteuid() != 0:
        print("test_daemon needs root (it runs the daemon as another user)")
        sys.exit(1)
    case_lifecycle()
    case_changes()
    case_threshold_crossed()
    case_state_trouble()
    case_secrets()
    case_journald()
    case_journald_japanese()
    finish("test_daemon", cases)


if __name__ == "__main__":
    main()
