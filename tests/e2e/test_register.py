#!/usr/bin/env python3
"""End to end: the holders' register (issue #13, SPEC §12).

A real kigend reads a register written as an administrator's Excel would (UTF-8 with a BOM,
then CP932, quoted fields with commas, quotes and line breaks, CRLF), watches it, and keeps
what it says in its report: declared certificates (keystore "register", format "declared",
sha256 as SPEC §12 defines it), holders of readable files, one malformed error per bad row.
Alerts are read back from the daemon's syslog socket, the report from its status socket,
kigenctl is the real one.

Usage: test_register.py [CASE ...]   (all cases by default)
"""
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kigentest import Daemon, cert, check, fact, finish, scratch, wait_until  # noqa: E402
from kigensock import request  # noqa: E402

NOW = "2026-11-24T12:00:00Z"  # the fixtures' reference instant
KIGENCTL = os.environ["KIGENCTL"]
KIGEND = os.environ["KIGEND"]
cases = 0

RULES = """rules:
  - match: { issuer: "*NACCS Client CA*" }
    renew_url: "https://renew.example/naccs"
    validity: 5y1m
    instructions: |
      Open the renewal page in Safari on the iPhone that holds the certificate.
"""

# Line 1 is the header; the record of line 3 spans lines 3 and 4 (a quoted line break).
REGISTER = (
    "holder,email,terminal,device,issuer,issued,not_after,subject\r\n"
    "田中 太郎,tanaka@example.co.jp,T001,iPhone,CN=NACCS Client CA,2021-10-31,,\r\n"
    "\"Sato, Hanako\",sato@example.co.jp,T002,\"PC \"\"desk\"\"\r\nroom 2\","
    ",,2027-01-31,\r\n"
    "# a comment line\r\n"
    "Bad Date,,T003,,,31/01/2021,,\r\n"
    "山田,yamada@example.co.jp,,,,,2026-12-31,\"C=JP,O=Example Trading,CN=sato\"\r\n"
)


def declared_sha256(holder, terminal, not_after):
    return hashlib.sha256(("declared\n%s\n%s\n%s" % (holder, terminal, not_after))
                          .encode("utf-8")).hexdigest()


def records(sock):
    a = request(sock, {"cmd": "list"})
    return a.get("certificates", []), a.get("errors", [])


def by_holder(certs, name):
    return [c for c in certs if (c.get("holder") or {}).get("name") == name]


class Estate:
    def __init__(self, name, with_file=False):
        self.ks = scratch(name + "-ks")
        self.dir = scratch(name + "-reg")
        self.path = os.path.join(self.dir, "holders.csv")
        self.sock = os.path.join(scratch(name + "-sock"), "kigen.sock")
        if with_file:
            shutil.copy(cert("critical.pem"), os.path.join(self.ks, "sato.pem"))
        self.d = Daemon(name, [("naccs", self.ks)], now=NOW,
                        extra="socket: %s\nholders: { register: %s, admins: [it@example.co.jp] }\n"
                        "metrics: { not_before: true }\n%s" % (self.sock, self.path, RULES))

    def write(self, text, encoding="utf-8-sig"):
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(text.encode(encoding))
        os.rename(tmp, self.path)  # as an editor saves

    def close(self):
        self.d.close()
        for p in (self.ks, self.dir, os.path.dirname(self.sock)):
            shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def started(name):
    """A running estate over REGISTER, or None when the daemon did not start (a failure)."""
    global cases
    cases += 1
    e = Estate(name)
    e.write(REGISTER)
    try:
        yield e if check(e.d.start(), "READY=1: %s" % e.d.stderr()[-500:]) else None
    finally:
        e.close()


def case_declared_holders_and_bad_rows():
    """UTF-8 with BOM, quoted fields, a bad row; the report, the socket and kigenctl."""
    with started("reg-utf8") as e:
        if not e:
            return
        certs, errors = records(e.sock)
        tanaka = by_holder(certs, "田中 太郎")
        if check(len(tanaka) == 1, "one declared certificate for 田中 太郎: %s" % certs):
            t = tanaka[0]
            # 2021-10-31 + 5y1m = 2026-11-31, which does not exist: November's last day.
            check(t["not_after"] == "2026-11-30T00:00:00Z", "month end: %s" % t["not_after"])
            check(t["not_before"] == "2021-10-31T00:00:00Z", "issued: %s" % t["not_before"])
            check(t["keystore"] == "register" and t["format"] == "declared" and
                  t["path"] == e.path and t["entry"] == "2" and t["serial"] == "",
                  "declared record: %s" % t)
            check(t["subject"] == "CN=田中 太郎" and t["issuer"] == "CN=NACCS Client CA",
                  "subject and issuer: %s" % t)
            check(t["sha256"] == declared_sha256("田中 太郎", "T001", "2026-11-30T00:00:00Z"),
                  "sha256 as SPEC §12: %s" % t["sha256"])
            check(t["holder"] == {"name": "田中 太郎", "email": "tanaka@example.co.jp"},
                  "holder: %s" % t["holder"])
            check(t["state"] == "critical", "5 days left is critical: %s" % t["state"])
            shown = request(e.sock, {"cmd": "show", "sha256": t["sha256"]})
            check(shown.get("locations") and shown["locations"][0].get("holder") == t["holder"],
                  "show names the holder of each location: %s" % shown)
        sato = by_holder(certs, "Sato, Hanako")
        if check(len(sato) == 1, "the quoted holder with a comma: %s" % certs):
            check(sato[0]["entry"] == "3" and sato[0]["not_before"] is None and
                  sato[0]["not_after"] == "2027-01-31T00:00:00Z", "row 3: %s" % sato[0])
        # 山田's row names a subject and a date, and no readable file has it: declared.
        yamada = by_holder(certs, "山田")
        check(len(yamada) == 1 and yamada[0]["subject"] == "C=JP,O=Example Trading,CN=sato",
              "a row with a subject no file matches is declared: %s" % yamada)
        bad = [x for x in errors if x["keystore"] == "register"]
        check(len(bad) == 1 and bad[0]["error"] == "malformed" and
              bad[0]["message"].startswith("%s:6: " % e.path) and bad[0]["path"] == e.path,
              "one malformed error FILE:LINE for the bad row: %s" % errors)
        # The alert says who holds it and where to renew.
        hits = e.d.wait_alert(lambda a: a["msgid"] == "cert.critical" and
                              a["sd"].get("holder") == "田中 太郎", 10)
        if check(hits, "cert.critical names the holder: %s" % e.d.alerts(0)):
            sd = hits[0]["sd"]
            check(sd.get("holder_email") == "tanaka@example.co.jp" and
                  sd.get("renew_url") == "https://renew.example/naccs" and
                  "Safari" in sd.get("instructions", ""), "action fields: %s" % sd)
        # The metrics name the holder (SPEC §10) and have no not_before without `issued`.
        m = request(e.sock, {"cmd": "metrics"}).get("metrics", "")
        check('holder="田中 太郎"' in m, "holder label in the metrics: %s" % m[:500])
        check(not [x for x in m.splitlines() if x.startswith("kigen_cert_not_before_seconds")
                   and 'holder="Sato, Hanako"' in x],
              "no not_before sample for a row without issued")
        # kigenctl list --holder, table and JSON.
        r = subprocess.run([KIGENCTL, "--socket", e.sock, "list", "--holder", "田中 太郎"],
                           capture_output=True, text=True)
        check(r.returncode == 2 and "HOLDER" in r.stdout and "田中 太郎" in r.stdout and
              "Sato" not in r.stdout, "kigenctl list --holder: %d %s" % (r.returncode, r.stdout))
        r = subprocess.run([KIGENCTL, "--socket", e.sock, "list", "--json", "--holder",
                            "sato@example.co.jp"], capture_output=True, text=True)
        check(r.returncode == 0 and '"Sato, Hanako"' in r.stdout and "田中" not in r.stdout,
              "kigenctl list --holder EMAIL: %d %s" % (r.returncode, r.stdout[:300]))
        # --check-config names the bad row too.
        r = subprocess.run([KIGEND, "--check-config", e.d.config], capture_output=True,
                           text=True)
        check(r.returncode == 3 and "%s:6: " % e.path in r.stderr,
              "--check-config names the bad row: %d %s" % (r.returncode, r.stderr))


def case_cp932_change_is_watched_and_renewed():
    """Saved again as CP932 with a later not_after: seen within seconds, cert.renewed once."""
    with started("reg-cp932") as e:
        if not e:
            return
        old = declared_sha256("Sato, Hanako", "T002", "2027-01-31T00:00:00Z")
        new = declared_sha256("Sato, Hanako", "T002", "2032-02-29T00:00:00Z")
        e.write(REGISTER.replace("2027-01-31", "2032-02-29"), encoding="cp932")
        t0 = time.time()
        # Seen without a rescan (the watch); how soon is a figure, not a test (~1 s idle).
        got = wait_until(lambda: [c for c in records(e.sock)[0] if c["sha256"] == new], 10)
        print("the saved register was seen after %.2f s" % (time.time() - t0))
        check(got, "the saved change shows without a rescan: %s" % records(e.sock)[0])
        certs = records(e.sock)[0]
        check(by_holder(certs, "田中 太郎") and not [c for c in certs if c["sha256"] == old],
              "CP932 read: the Japanese holder is still there, the old row gone: %s" % certs)
        hits = e.d.wait_alert(lambda a: a["msgid"] == "cert.renewed", 10)
        check(len(hits) == 1 and hits[0]["sd"].get("sha256") == new,
              "one cert.renewed for a changed not_after: %s" % hits)
        time.sleep(1.5)
        check(not [a for a in e.d.alerts(0) if a["msgid"] == "cert.gone"],
              "no cert.gone for a renewed declared certificate: %s" % e.d.alerts(0))


def case_a_readable_file_wins():
    """A row that a real file later matches declares nothing more; the file has its holder."""
    with started("reg-file") as e:
        if not e:
            return
        check(by_holder(records(e.sock)[0], "山田"), "declared before the file")
        shutil.copy(cert("critical.pem"), os.path.join(e.ks, "sato.pem"))
        sha = fact("critical", "sha256")
        got = wait_until(lambda: [c for c in records(e.sock)[0] if c["sha256"] == sha], 5)
        if check(got, "the file is read: %s" % records(e.sock)[0]):
            check(got[0]["holder"] == {"name": "山田", "email": "yamada@example.co.jp"},
                  "the file's holder is the row's: %s" % got[0]["holder"])
        yamada = by_holder(records(e.sock)[0], "山田")
        check(len(yamada) == 1 and yamada[0]["keystore"] == "naccs",
              "the declared row is gone, the file wins: %s" % yamada)
        time.sleep(1.5)
        declared = declared_sha256("山田", "", "2026-12-31T00:00:00Z")
        check(not [a for a in e.d.alerts(0) if a["msgid"] == "cert.gone"],
              "the declared certificate the file superseded is not gone: %s"
              % [a for a in e.d.alerts(0) if a["msgid"] == "cert.gone"])
        check([a for a in e.d.alerts(0) if a["sd"].get("sha256") == declared],
              "it had been alerted on before (the test sees what it claims): %s" % declared)


def case_register_away_keeps_rows():
    """A register that cannot be read keeps its rows, stale, and nothing is gone."""
    with started("reg-away") as e:
        if not e:
            return
        n = len(records(e.sock)[0])
        os.rename(e.path, e.path + ".away")
        got = wait_until(lambda: [x for x in records(e.sock)[1]
                                  if x["error"] == "keystore_unavailable"], 5)
        check(got and got[0]["keystore"] == "register", "the register is unavailable: %s" % got)
        check(len(records(e.sock)[0]) == n, "its rows are kept: %s" % records(e.sock)[0])
        time.sleep(1.5)
        check(not [a for a in e.d.alerts(0) if a["msgid"] == "cert.gone"],
              "no cert.gone while the register is away: %s" % e.d.alerts(0))
        os.rename(e.path + ".away", e.path)
        check(wait_until(lambda: not [x for x in records(e.sock)[1]
                                      if x["error"] == "keystore_unavailable"], 5),
              "back: the error goes")


CASES = [case_declared_holders_and_bad_rows, case_cp932_change_is_watched_and_renewed,
         case_a_readable_file_wins, case_register_away_keeps_rows]

if __name__ == "__main__":
    wanted = sys.argv[1:]
    for c in CASES:
        if not wanted or c.__name__ in wanted:
            c()
    finish("test_register", cases)
