#!/usr/bin/env python3
"""End to end: `kigend --once --format json` over a corpus made by openssl and keytool.

Every expected value is computed here with the openssl and keytool command-line tools and
the SPEC §5 arithmetic, never with kigen. The system's own certificates (Mozilla's bundle
and Java's cacerts) are a corpus no one here wrote.
"""
import calendar
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

KIGEND = os.environ["KIGEND"]
FIX = os.environ["KIGEN_FIXTURES"]
# The table follows LANG (kigentest.py does the same for the daemon's tests): English here.
os.environ["LANG"] = "C.UTF-8"
for _name in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
    os.environ.pop(_name, None)
NOW = "2026-11-24T12:00:00Z"
NOW_T = calendar.timegm(time.strptime(NOW, "%Y-%m-%dT%H:%M:%SZ"))
DAY = 86400
PEM_RE = re.compile(rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----.+?-----END (?:X509 |TRUSTED )?CERTIFICATE-----", re.S)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(*args, input=None):
    return subprocess.run(args, input=input, capture_output=True, check=True).stdout


def facts(pem):
    """openssl's view of one PEM certificate."""
    out = run("openssl", "x509", "-noout", "-fingerprint", "-sha256", "-subject", "-issuer",
              "-serial", "-startdate", "-enddate", "-nameopt", "RFC2253,-esc_msb", input=pem).decode()
    f = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        f[key] = value
    serial = f["serial"].lower().lstrip("0") or "0"

    def t(s):
        return calendar.timegm(time.strptime(s, "%b %d %H:%M:%S %Y GMT"))

    # SPEC §12: without a register, the holder is the certificate's own address, the first
    # subjectAltName rfc822Name, else the subject's emailAddress.
    san = run("openssl", "x509", "-noout", "-ext", "subjectAltName", input=pem).decode()
    emails = re.findall(r"email:([^,\s]+)", san)
    if not emails:
        emails = re.findall(r"(?:^|,)emailAddress=((?:[^,\\]|\\.)+)", f["subject"])
    return {
        "email": emails[0] if emails else None,
        "sha256": f["sha256 Fingerprint"].replace(":", "").lower(),
        "subject": f["subject"], "issuer": f["issuer"], "serial": serial,
        "nb": t(f["notBefore"].replace("  ", " ")), "na": t(f["notAfter"].replace("  ", " ")),
    }


def pem_certs(data):
    """The certificates of a PEM, PKCS#7 or PKCS#12 file, as openssl lists them."""
    return [m.group(0) for m in PEM_RE.finditer(data)]


def keytool_records(keystore, path, fmt, storepass):
    """Records of a Java keystore as keytool lists it: alias, alias#1, ... along a chain."""
    listed = subprocess.run(["keytool", "-list", "-rfc", "-keystore", path, "-storepass", storepass,
                             "-storetype", fmt.upper()], capture_output=True, check=True,
                            env=dict(os.environ, LC_ALL="C.UTF-8")).stdout.decode()
    records = []
    for section in listed.split("Alias name: ")[1:]:
        alias = section.split("\n", 1)[0].strip()
        for i, pem in enumerate(pem_certs(section.encode())):
            records.append(expect_record(keystore, path, fmt, alias if i == 0 else "%s#%d" % (alias, i), pem))
    return records


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def expect_record(keystore, path, fmt, entry, pem, renew=28 * DAY, critical=7 * DAY, labels=None):
    f = facts(pem)
    if NOW_T < f["nb"]:
        state = "not_yet_valid"
    elif NOW_T >= f["na"]:
        state = "expired"
    elif NOW_T >= f["na"] - critical:
        state = "critical"
    elif NOW_T >= f["na"] - renew:
        state = "renewal_open"
    else:
        state = "ok"
    return {
        "sha256": f["sha256"], "keystore": keystore, "path": path, "format": fmt,
        "entry": entry, "subject": f["subject"], "issuer": f["issuer"], "serial": f["serial"],
        "not_before": rfc3339(f["nb"]), "not_after": rfc3339(f["na"]),
        "renewal_opens": rfc3339(f["na"] - renew),
        "days_left": (f["na"] - NOW_T) // DAY, "state": state, "labels": labels or {},
        "last_seen": rfc3339(NOW_T),  # every location is live in a one-shot report
        "holder": {"name": f["email"], "email": f["email"]} if f["email"] else None,
    }


def main():
    tmp = tempfile.mkdtemp(prefix="kigen-e2e-")
    try:
        work(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d passed, %d failed" % (0, len(failures)))
        sys.exit(1)
    print("1 passed, 0 failed")


def work(tmp):
    certs = os.path.join(FIX, "certs")
    users = os.path.join(tmp, "naccs")
    tls = os.path.join(tmp, "tls")
    os.makedirs(os.path.join(users, "sub"))
    os.makedirs(tls)
    expected = []
    errors = []

    # NACCS users: PKCS#12 with the password from a file, a sidecar, or none needed.
    p12 = {
        "modern.p12": "Tanaka-2026", "legacy.p12": "Tanaka-2026", "des3.p12": "Tanaka-2026",
        "nomac.p12": "Tanaka-2026", "sidecar.p12": "Side car!", "nopass.p12": "",
        "emptypass.p12": "",
    }
    for name, password in p12.items():
        dst = os.path.join(users, "sub" if name == "legacy.p12" else "", name)
        shutil.copy(os.path.join(certs, name), dst)
        if name == "sidecar.p12":
            shutil.copy(os.path.join(certs, name + ".pass"), dst + ".pass")
        listed = run("openssl", "pkcs12", "-in", dst, "-nokeys", "-legacy",
                     "-passin", "pass:" + password)
        for i, pem in enumerate(pem_certs(listed)):
            expected.append(expect_record("naccs-users", dst, "pkcs12", str(i), pem,
                                          labels={"team": "customs"}))
    shutil.copy(os.path.join(certs, "sidecar.p12"), os.path.join(users, "wrong.p12"))
    shutil.copy(os.path.join(certs, "truncated.p12"), os.path.join(users, "truncated.p12"))
    errors.append(("naccs-users", os.path.join(users, "truncated.p12"), "malformed"))
    # A sidecar is tried first, then the configured password: here neither fits.
    with open(os.path.join(users, "modern.p12.pass"), "w") as f:
        f.write("not-the-password\n")
    errors.append(("naccs-users", os.path.join(users, "wrong.p12"), "wrong_password"))
    with open(os.path.join(tmp, "naccs.pass"), "w") as f:
        f.write("Tanaka-2026\n")

    # TLS: PEM bundle, DER, PKCS#7 in both encodings, a damaged bundle, a key, links.
    for name, fmt in [("bundle.pem", "pem"), ("single.der", "der"), ("chain.p7b", "pkcs7"),
                      ("chain.p7b.pem", "pkcs7"), ("trusted.pem", "pem")]:
        dst = os.path.join(tls, name.replace(".", "_") + ".crt")  # names must not matter
        shutil.copy(os.path.join(certs, name), dst)
        if fmt == "der":
            pems = [run("openssl", "x509", "-inform", "DER", "-in", dst)]
        elif fmt == "pkcs7":
            inform = "DER" if name.endswith(".p7b") else "PEM"
            pems = pem_certs(run("openssl", "pkcs7", "-inform", inform, "-in", dst, "-print_certs"))
        else:
            pems = pem_certs(open(dst, "rb").read())
        for i, pem in enumerate(pems):
            expected.append(expect_record("tls", dst, fmt, str(i), pem))
    damaged = os.path.join(tls, "damaged.pem")
    shutil.copy(os.path.join(certs, "damaged.pem"), damaged)
    good = [p for p in pem_certs(open(damaged, "rb").read()) if b"Broken" not in p]
    for i, pem in enumerate(good):
        # The broken block in the middle is certificate 1 of the file.
        expected.append(expect_record("tls", damaged, "pem", str(0 if i == 0 else 2), pem))
    errors.append(("tls", damaged, "malformed"))
    shutil.copy(os.path.join(certs, "lonekey.pem"), os.path.join(tls, "key.pem"))
    shutil.copy(os.path.join(certs, "empty.p12"), os.path.join(tls, "empty.bin"))
    errors.append(("tls", os.path.join(tls, "empty.bin"), "malformed"))
    with open(os.path.join(tls, "big.pem"), "wb") as f:
        f.write(b"x" * 70000)
    errors.append(("tls", os.path.join(tls, "big.pem"), "too_large"))
    os.mkfifo(os.path.join(tls, "fifo.pem"))
    os.symlink("/dev/zero", os.path.join(tls, "zero.pem"))
    os.symlink(os.path.join(certs, "ok.pem"), os.path.join(tls, "outside.pem"))
    os.symlink("bundle_pem.crt", os.path.join(tls, "again.pem"))  # same file: yielded once
    os.symlink("nowhere", os.path.join(tls, "dangling.pem"))
    os.symlink(".", os.path.join(tls, "loop"))

    # Java keystores made by keytool, and the system's certificates.
    jks_dir = os.path.join(FIX, "jks")
    java = os.path.join(tmp, "java")
    os.makedirs(java)
    for name in sorted(os.listdir(jks_dir)):
        if name.endswith((".jks", ".jceks")):
            dst = os.path.join(java, name)
            shutil.copy(os.path.join(jks_dir, name), dst)
            fmt = "jceks" if name.endswith(".jceks") else "jks"
            with open(os.path.join(jks_dir, name + ".pass"), encoding="utf-8") as f:
                expected += keytool_records("java", dst, fmt, f.read())
    check(any(r["format"] == "jceks" for r in expected), "the corpus has a JCEKS keystore")

    # A keystore that follows links out of itself, but never into a device or a FIFO.
    linked = os.path.join(tmp, "linked")
    os.makedirs(linked)
    os.symlink(os.path.join(certs, "ok.pem"), os.path.join(linked, "outside.pem"))
    expected.append(expect_record("linked", os.path.join(linked, "outside.pem"), "pem", "0",
                                  open(os.path.join(certs, "ok.pem"), "rb").read()))
    os.symlink("/dev/zero", os.path.join(linked, "zero.pem"))
    os.mkfifo(os.path.join(linked, "fifo.pem"))
    os.symlink(linked, os.path.join(linked, "self"))

    system_ks = []
    mozilla = "/usr/share/ca-certificates/mozilla"
    for name in sorted(os.listdir(mozilla)):
        path = os.path.join(mozilla, name)
        for i, pem in enumerate(pem_certs(open(path, "rb").read())):
            system_ks.append(expect_record("mozilla", path, "pem", str(i), pem))
    cacerts = "/etc/ssl/certs/java/cacerts"
    system_ks += keytool_records("java-cacerts", cacerts, "jks", "changeit")
    check(len(system_ks) > 200, "system certificates found: %d" % len(system_ks))

    config = os.path.join(tmp, "kigen.yaml")
    with open(config, "w") as f:
        f.write(f"""
timezone: UTC
keystores:
  - name: naccs-users
    path: {users}
    passwords:
      - file: {tmp}/naccs.pass
    labels: {{ team: customs }}
  - name: tls
    path: {tls}
    max_file_size: 64KiB
  - name: mozilla
    path: {mozilla}
    include: ["*.crt"]
  - name: java
    path: {java}
  - name: linked
    path: {linked}
    follow_symlinks: true
  - name: java-cacerts
    path: {cacerts}
    passwords: [ {{ env: KIGEN_TEST_STOREPASS }} ]
probes: {{ targets: [] }}
""")
    env = dict(os.environ, KIGEN_TEST_STOREPASS="changeit")
    proc = subprocess.run([KIGEND, "--config", config, "--once", "--format", "json", "--now", NOW],
                          capture_output=True, env=env, timeout=300)
    check(proc.returncode == 2, "exit status 2 with expired certificates, got %d: %s"
          % (proc.returncode, proc.stderr.decode()))
    report = json.loads(proc.stdout)
    check(report["generated_at"] == NOW, "generated_at is the --now value")
    check(report["probes"] == [], "probes is [] when probing is off")

    want = expected + system_ks
    got = report["certificates"]
    key = lambda r: (r["keystore"], r["path"], r["entry"])
    got_by = {key(r): r for r in got}
    check(len(got) == len(want), "record count %d, want %d" % (len(got), len(want)))
    for w in want:
        g = got_by.get(key(w))
        if g is None:
            check(False, "missing record %s" % (key(w),))
            continue
        for field in w:
            check(g[field] == w[field], "%s %s: got %r want %r" % (key(w), field, g[field], w[field]))
        check(set(g) == set(w), "%s: fields %s" % (key(w), sorted(g)))
    extra = set(got_by) - {key(w) for w in want}
    check(not extra, "unexpected records: %s" % sorted(extra)[:5])

    order = [(r["not_after"], r["path"], int(r["entry"]) if r["entry"].isdigit() else r["entry"])
             for r in got]
    check(all(not (order[i] > order[i + 1]) for i in range(len(order) - 1)
              if type(order[i][2]) is type(order[i + 1][2])), "records sorted by not_after, path, entry")

    got_errors = sorted((e["keystore"], e["path"], e["error"]) for e in report["errors"])
    check(got_errors == sorted(errors), "errors: got %s want %s" % (got_errors, sorted(errors)))
    check([e["path"] for e in report["errors"]] == sorted(e["path"] for e in report["errors"]),
          "errors sorted by path")
    for e in report["errors"]:
        check("Tanaka-2026" not in e["message"] and "not-the-password" not in e["message"],
              "no password in an error message")
    check("Tanaka-2026" not in proc.stderr.decode(), "no password on stderr")

    s = report["summary"]
    states = [r["state"] for r in want]
    for st in ("ok", "renewal_open", "critical", "expired", "not_yet_valid"):
        check(s[st] == states.count(st), "summary %s: %d want %d" % (st, s[st], states.count(st)))
    check(s["certificates"] == len(want), "summary certificates")
    check(s["unique"] == len({w["sha256"] for w in want}), "summary unique")
    check(s["errors"] == len(errors), "summary errors")
    check(s["probes_down"] == 0, "summary probes_down")

    # Exit statuses of SPEC §6.
    only_ok = os.path.join(tmp, "ok.yaml")
    okdir = os.path.join(tmp, "okdir")
    os.makedirs(okdir)
    shutil.copy(os.path.join(certs, "ok.pem"), okdir)
    with open(only_ok, "w") as f:
        f.write(f"keystores: [ {{ name: ok, path: {okdir} }} ]\nprobes: {{ targets: [] }}\n")
    r = subprocess.run([KIGEND, "-c", only_ok, "--once", "--format", "json", "--now", NOW],
                       capture_output=True)
    check(r.returncode == 0, "exit 0 when all is ok, got %d" % r.returncode)
    shutil.copy(os.path.join(certs, "renewal_open.pem"), okdir)
    r = subprocess.run([KIGEND, "-c", only_ok, "--once", "--format", "json", "--now", NOW],
                       capture_output=True)
    check(r.returncode == 1, "exit 1 with a renewal window open, got %d" % r.returncode)
    r = subprocess.run([KIGEND, "-c", only_ok, "--once", "--now", "yesterday"], capture_output=True)
    check(r.returncode == 3 and b"RFC 3339" in r.stderr, "exit 3 for a bad --now")
    bad = os.path.join(tmp, "bad.yaml")
    with open(bad, "w") as f:
        f.write("keystores:\n  - name: x\n    path: /tmp\n    colour: blue\n")
    r = subprocess.run([KIGEND, "--check-config", bad], capture_output=True)
    check(r.returncode == 3 and b"bad.yaml:4:5" in r.stderr,
          "exit 3 and file:line:column for a bad config: %r" % r.stderr)
    r = subprocess.run([KIGEND, "--check-config", only_ok], capture_output=True)
    check(r.returncode == 0, "--check-config accepts a good file")
    r = subprocess.run([KIGEND, "-c", only_ok, "--once", "--format", "table", "--now", NOW],
                       capture_output=True)
    check(b"renewal_open" in r.stdout and b"suzuki" in r.stdout and r.returncode == 1,
          "the table shows the certificate and its state")
    # The table follows LANG (no Japanese locale needed); the JSON report does not.
    en = r.stdout
    ja_env = dict(os.environ, LANG="ja_JP.UTF-8", LC_ALL="", LANGUAGE="")
    r = subprocess.run([KIGEND, "-c", only_ok, "--once", "--format", "table", "--now", NOW],
                       capture_output=True, env=ja_env)
    ja = r.stdout.decode("utf-8", "replace")
    check(ja.startswith("状態          残日数  有効期限") and "suzuki" in ja and
          "件（重複を除き" in ja and r.returncode == 1, "the table in Japanese: %s" % ja)
    # States and dates for people in Japanese too; the machine names stay out of it.
    rows = ja.splitlines()
    check(len(rows) > 1 and rows[1].startswith("更新期間中") and "年" in rows[1] and
          "日(" in rows[1], "the table's states and dates in Japanese: %s" % ja)
    check(en.startswith(b"STATE           DAYS  NOT AFTER"), "and in English under C")
    reports = [subprocess.run([KIGEND, "-c", only_ok, "--once", "--format", "json", "--now", NOW],
                              capture_output=True, env=env).stdout
               for env in (ja_env, dict(os.environ, LANG="C", LC_ALL=""))]
    check(reports[0] == reports[1] and reports[0].startswith(b"{"),
          "the JSON report is the same byte for byte under both")


if __name__ == "__main__":
    main()
