#!/usr/bin/env python3
"""End to end: alert mail through the real msmtp to a real SMTP server on loopback.

kigend runs with `alerts.mail.sendmail: [/usr/bin/msmtp, -C RC]`; msmtp speaks SMTP to an
aiosmtpd server (Debian's python3-aiosmtpd, run by /usr/bin/python3) that writes each message
it accepts to a directory. Every message is parsed back with Python's email package. Covers:
one message per alert with the decoded Japanese subject, To and body facts; nothing again after
a restart or a reload; the server down (msmtp fails, kigen retries) then up: each message
arrives exactly once; status and metrics count what waits and what was given up; language: ja
under LANG=C.UTF-8 (Japanese subject and body, a register row's en winning for its holder).
"""
import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kigentest import (Daemon, check, die_with_parent, finish, free_port, need,  # noqa: E402
                       wait_until)
from kigensock import request  # noqa: E402

PY = "/usr/bin/python3"
MSMTP = "/usr/bin/msmtp"
cases = 0

SERVER = r'''
import asyncio, os, sys
from aiosmtpd.controller import Controller
out, port = sys.argv[1], int(sys.argv[2])
class Keep:
    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(out, "%d-%d.eml" % (time.time_ns(), os.getpid()))
        with open(name + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(name + ".tmp", name)
        return "250 OK"
import time
c = Controller(Keep(), hostname="127.0.0.1", port=port)
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
'''


class Smtp:
    """An aiosmtpd server on 127.0.0.1:port that keeps each message as a file in out."""

    def __init__(self, out, port):
        self.out, self.port, self.proc = out, port, None

    def start(self):
        self.proc = subprocess.Popen([PY, "-c", SERVER, self.out, str(self.port)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     preexec_fn=die_with_parent)
        check(self.proc.stdout.readline().strip() == b"ready", "the SMTP server starts")

    def stop(self):
        if self.proc:
            self.proc.stdin.close()
            self.proc.wait(10)
            self.proc.stdout.close()
            self.proc = None

    def messages(self):
        msgs = []
        for n in sorted(f for f in os.listdir(self.out) if f.endswith(".eml")):
            with open(os.path.join(self.out, n), "rb") as f:
                msgs.append(email.message_from_binary_file(f, policy=email.policy.default))
        return msgs


def make_cert(path, cn, days):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null", "-utf8",
                    "-subj", "/CN=%s/O=Example" % cn, "-days", str(days), "-out", path + ".tmp"],
                   check=True, capture_output=True)
    os.rename(path + ".tmp", path)


def by_event(msgs, event):
    return [m for m in msgs if m["X-Kigen-Event"] == event]


def by_subject(msgs, text):
    return [m for m in msgs if text in str(m["Subject"])]


def failures_seen():
    import kigentest
    return bool(kigentest.failures)


def scratch_mail():
    """A work directory: ks/ (a keystore), out/ (what the SMTP server keeps), an msmtp rc for
    a server on a free loopback port, and where the socket goes."""
    work = tempfile.mkdtemp(prefix="kigen-mail-")
    ks, out = os.path.join(work, "ks"), os.path.join(work, "out")
    os.makedirs(ks)
    os.makedirs(out)
    port = free_port()
    rc = os.path.join(work, "msmtprc")
    with open(rc, "w") as f:
        f.write("defaults\nauth off\ntls off\n\naccount default\nhost 127.0.0.1\nport %d\n"
                "from kigen@admin.example.test\n" % port)
    os.chmod(rc, 0o600)
    return work, ks, out, port, rc, os.path.join(work, "kigen.sock")


def teardown(d, smtp, work):
    if failures_seen():
        print(d.stderr()[-8000:])
    d.close()
    smtp.stop()
    subprocess.run(["rm", "-rf", work])


def case_mail():
    global cases
    cases += 1
    work, ks, out, port, rc, sock = scratch_mail()
    make_cert(os.path.join(ks, "tanaka.pem"), "田中", 3)  # critical: within 7 days
    smtp = Smtp(out, port)
    smtp.start()
    extra = ('  mail:\n    sendmail: ["%s", "-C", "%s"]\n'
             '    from: "kigen <kigen@admin.example.test>"\n'
             'holders:\n  admins: ["it@example.test"]\nsocket: %s\n' % (MSMTP, rc, sock))
    d = Daemon("mail", [("ks", ks)], extra=extra)
    env = {"KIGEN_TEST_RETRY_FIRST_MS": "300", "KIGEN_TEST_RETRY_MAX_MS": "1200"}
    try:
        check(d.start(env), "kigend starts with mail on")
        # 3 days left: cert.threshold (the 3d step) and cert.critical, one message each.
        check(wait_until(lambda: len(smtp.messages()) >= 2, 30), "the first alerts are mailed")
        time.sleep(1)
        msgs = smtp.messages()
        events = sorted(str(x["X-Kigen-Event"]) for x in msgs)
        check(events == ["cert.critical", "cert.threshold"],
              "one message per alert: %r" % events)
        crit = [x for x in msgs if x["X-Kigen-Event"] == "cert.critical"]
        m = crit[0] if crit else {}
        subj = str(m.get("Subject", ""))
        check(subj == "[kigen] Certificate expires within days: 田中",
              "the subject decodes to Japanese: %r" % subj)
        check(str(m.get("To", "")) == "it@example.test", "no holder: To the admins: %r" % m.get("To"))
        check(m.get("Cc") is None, "no Cc without a holder")
        check(len(m.get("X-Kigen-SHA256", "")) == 64, "X-Kigen-SHA256 is the fingerprint")
        check(m.get("Auto-Submitted") == "auto-generated", "Auto-Submitted")
        check(m.get("Message-ID", "").startswith("<kigen."), "a Message-ID of kigen's")
        check("kigen@admin.example.test" in str(m.get("From", "")), "From as configured")
        body = m.get_content() if crit else ""
        check(os.path.join(ks, "tanaka.pem") in body, "the body names the location")
        check("Valid until:" in body and "UTC" in body, "the body gives the deadline in UTC")
        for n in os.listdir(out):
            with open(os.path.join(out, n), "rb") as f:
                check(all(b < 128 for b in f.read()), "the message is 7-bit on the wire")

        # A restart and a reload send nothing again.
        d.stop()
        d.notify.messages.clear()  # READY=1 of the new process, not the old one's
        check(d.start(env), "kigend restarts")
        d.signal(signal.SIGHUP)
        check(wait_until(lambda: by_event(smtp.messages(), "config.reloaded"), 10),
              "the reload is mailed to the admins")
        time.sleep(2)
        check(len(by_subject(smtp.messages(), "田中")) == 2,
              "nothing again after restart and reload: %r"
              % [str(x["Subject"]) for x in smtp.messages()])

        # The server down: msmtp fails, the delivery waits in state_dir and is retried.
        smtp.stop()
        make_cert(os.path.join(ks, "sato.pem"), "佐藤", 2)
        deliveries = os.path.join(d.state, "deliveries")

        def pending():
            try:
                return request(sock, {"cmd": "status"}).get("deliveries", {}).get("mail", {})
            except OSError:
                return {}
        check(wait_until(lambda: pending().get("pending", 0) >= 1, 20),
              "status shows the waiting delivery: %r" % pending())
        check(wait_until(lambda: "Cannot deliver mail for cert.critical" in d.stderr(), 10),
              "the failed attempt is logged")
        check(any(f.startswith("mail-") and f.endswith(".json") for f in os.listdir(deliveries)),
              "the pending delivery is a file in state_dir/deliveries")
        check("佐藤" not in d.stderr() and "Valid until" not in d.stderr(),
              "the log holds no message text")
        # A restart while it waits: resumed from the file, not lost and not doubled.
        d.stop()
        d.notify.messages.clear()
        check(d.start(env), "kigend restarts with a delivery waiting")
        time.sleep(1.5)  # a few failed retries (300 ms doubling to 1.2 s)
        smtp.start()
        check(wait_until(lambda: len(by_subject(smtp.messages(), "佐藤")) >= 2, 30),
              "the waiting messages arrive once the server is back")
        time.sleep(3)
        msgs = smtp.messages()
        check(len(by_subject(msgs, "佐藤")) == 2 and len(by_subject(msgs, "田中")) == 2,
              "each message arrived exactly once: %r" % [str(x["Subject"]) for x in msgs])
        ids = [x["Message-ID"] for x in msgs]
        check(len(set(ids)) == len(ids), "every Message-ID is unique")
        st = pending()
        check(st.get("pending") == 0 and st.get("failed") == 0, "status after: %r" % st)
        p = subprocess.run([os.environ["KIGENCTL"], "--socket", sock, "status"],
                           capture_output=True, text=True)
        check("mail delivery" in p.stdout and "0 pending, 0 given up" in p.stdout,
              "kigenctl status shows the mail queue: %r" % p.stdout)
        metrics = request(sock, {"cmd": "metrics"}).get("metrics", "")
        check('kigen_alert_deliveries_failed_total{sink="mail"} 0' in metrics,
              "the metric is there")
        check("# TYPE kigen_alert_deliveries_failed_total counter" in metrics, "as a counter")
    finally:
        teardown(d, smtp, work)


def case_holders_and_digest():
    """To the holder (from the register), Cc the admins; the daily digest once a day."""
    global cases
    cases += 1
    work, ks, out, port, rc, sock = scratch_mail()
    make_cert(os.path.join(ks, "tanaka.pem"), "田中", 3)  # critical
    ends = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 20 * 86400))  # renewal_open
    register = os.path.join(work, "holders.csv")
    with open(register, "w", encoding="utf-8") as f:
        f.write("holder,email,subject,terminal,not_after\n"
                "田中 太郎,tanaka@example.test,*CN=田中*,,\n"
                "佐藤 花子,sato@example.test,,NAC0002,%s\n" % ends)
    # The daemon's clock 3 s before the next minute: the digest is due then.
    t = time.time()
    if t % 60 > 50:
        time.sleep(61 - t % 60)
        t = time.time()
    start = int(t // 60 * 60 + 57)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
    digest_at = time.strftime("%H:%M", time.gmtime(start + 3))
    smtp = Smtp(out, port)
    smtp.start()
    extra = ('  mail:\n    sendmail: ["%s", "-C", "%s"]\n    digest_at: "%s"\n'
             'holders:\n  register: %s\n  admins: ["it@example.test", "boss@example.test"]\n'
             'rules:\n  - match: { subject: "*" }\n    renew_url: "https://renew.example.test/"\n'
             '    instructions: "Open the renewal page in Safari on the iPhone."\n'
             'socket: %s\n' % (MSMTP, rc, digest_at, register, sock))
    d = Daemon("mail-holders", [("ks", ks)], extra=extra, now=now)
    try:
        check(d.start(), "kigend starts with a register and a digest time")
        check(wait_until(lambda: by_event(smtp.messages(), "digest"), 20),
              "the digest arrives at digest_at: %r" % [str(x["Subject"]) for x in smtp.messages()])
        time.sleep(1)
        msgs = smtp.messages()
        crit = [x for x in by_event(msgs, "cert.critical") if "田中" in str(x["Subject"])]
        if check(len(crit) == 1, "one cert.critical for 田中: %r" % [str(x["Subject"]) for x in msgs]):
            m = crit[0]
            to = m["To"].addresses
            check(len(to) == 1 and to[0].addr_spec == "tanaka@example.test" and
                  to[0].display_name == "田中 太郎", "To the holder, named: %r" % str(m["To"]))
            cc = sorted(a.addr_spec for a in m["Cc"].addresses) if m["Cc"] else []
            check(cc == ["boss@example.test", "it@example.test"], "Cc the admins: %r" % cc)
            body = m.get_content()
            check("https://renew.example.test/" in body and "Safari" in body,
                  "the body has the renew URL and the instructions")
        declared = [x for x in msgs if x["X-Kigen-Event"] in ("cert.renewal_open", "cert.threshold")
                    and x["To"] and x["To"].addresses[0].addr_spec == "sato@example.test"]
        check(declared, "the declared certificate's holder is mailed: %r"
              % [(str(x["Subject"]), str(x["To"])) for x in msgs])
        digests = by_event(msgs, "digest")
        if check(len(digests) == 1, "one digest: %d" % len(digests)):
            m = digests[0]
            check(sorted(a.addr_spec for a in m["To"].addresses) ==
                  ["boss@example.test", "it@example.test"], "the digest goes to the admins")
            body = m.get_content()
            check("田中 太郎" in body and "佐藤 花子" in body and "Expiring within days" in body
                  and "Renewal window open" in body, "the digest lists what is open: %s" % body)
        # A restart at the same instant: the day's digest is not sent again.
        d.stop()
        d.notify.messages.clear()
        check(d.start(), "kigend restarts")
        time.sleep(5)
        check(len(by_event(smtp.messages(), "digest")) == 1, "the digest once a day")
    finally:
        teardown(d, smtp, work)


def case_japanese():
    """language: ja on a server whose only locale is C.UTF-8: Japanese subjects and bodies; a
    register row's language (en) wins for that holder; machine-readable headers unchanged."""
    global cases
    cases += 1
    work, ks, out, port, rc, sock = scratch_mail()
    make_cert(os.path.join(ks, "tanaka.pem"), "田中", 3)  # critical
    make_cert(os.path.join(ks, "sato.pem"), "佐藤", 2)  # critical
    register = os.path.join(work, "holders.csv")
    with open(register, "w", encoding="utf-8") as f:
        f.write("holder,email,subject,language\n"
                "田中 太郎,tanaka@example.test,*CN=田中*,\n"
                "佐藤 花子,sato@example.test,*CN=佐藤*,en\n")
    smtp = Smtp(out, port)
    smtp.start()
    extra = ('  mail:\n    sendmail: ["%s", "-C", "%s"]\n'
             'holders:\n  register: %s\n  admins: ["it@example.test"]\n'
             'language: ja\nsocket: %s\n' % (MSMTP, rc, register, sock))
    d = Daemon("mail-ja", [("ks", ks)], extra=extra)
    # No Japanese locale on this machine, and none asked for: kigen reads its own catalogue.
    env = {"LANG": "C.UTF-8", "LC_ALL": "", "LC_MESSAGES": "", "LANGUAGE": ""}
    try:
        check(d.start(env), "kigend starts with language: ja under LANG=C.UTF-8")
        check(wait_until(lambda: len(by_event(smtp.messages(), "cert.critical")) >= 2, 30),
              "both cert.critical messages arrive")
        time.sleep(1)
        msgs = by_event(smtp.messages(), "cert.critical")
        tanaka = [x for x in msgs if "tanaka@example.test" in str(x["To"])]
        sato = [x for x in msgs if "sato@example.test" in str(x["To"])]
        if check(len(tanaka) == 1, "one for 田中: %r" % [str(x["Subject"]) for x in msgs]):
            m = tanaka[0]
            subj = str(m["Subject"])
            check(subj == "[kigen] 証明書の有効期限まであと数日です: 田中 太郎",
                  "the subject decodes to Japanese: %r" % subj)
            body = m.get_content()
            check("デジタル証明書 O=Example,CN=田中（発行者: O=Example,CN=田中）は、" in body,
                  "the message is Japanese: %s" % body)
            check(re.search(r"有効期限: +\d{4}年\d{1,2}月\d{1,2}日\([日月火水木金土]\) "
                            r"\d\d:\d\d UTC\n", body), "a Japanese date: %s" % body)
            check("の kigen が送信しました（イベント cert.critical, sha256 " in body,
                  "the footer names the event in English: %s" % body)
            check(len(m.get("X-Kigen-SHA256", "")) == 64 and m["X-Kigen-Event"] == "cert.critical",
                  "X-Kigen-* headers stay as they are")
        if check(len(sato) == 1, "one for 佐藤: %r" % [str(x["Subject"]) for x in msgs]):
            subj = str(sato[0]["Subject"])
            check(subj == "[kigen] Certificate expires within days: 佐藤 花子",
                  "the row's language: en wins for its holder: %r" % subj)
            check("Valid until:" in sato[0].get_content(), "an English body for 佐藤")
    finally:
        teardown(d, smtp, work)


def main():
    need(PY, MSMTP, "openssl")
    if subprocess.run([PY, "-c", "import aiosmtpd"], capture_output=True).returncode != 0:
        print("FAIL: test_mail needs python3-aiosmtpd for %s" % PY)
        sys.exit(1)
    case_mail()
    case_holders_and_digest()
    case_japanese()
    finish("test_mail", cases)


if __name__ == "__main__":
    main()
