#!/usr/bin/env python3
"""End to end: the real kigenctl against the real kigend over its status socket (SPEC §9).

Every subcommand with its exit status as a Nagios check sees it, `list --json` against
`kigend --once` at the same instant, rescan and reload as root and as another uid, a socket
handed over as systemd does, and the socket's limits from raw clients: malformed requests,
a 1 MiB line, a client that never reads, 200 clients while a scan runs, a client gone
mid-answer.
"""
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kigentest import KIGEND, Daemon, cert, check, fact, finish  # noqa: E402

KIGENCTL = os.environ["KIGENCTL"]
NOW = "2026-11-24T12:00:00Z"
cases = 0


def kigenctl(sock, *args, prefix=(), binary=KIGENCTL):
    """Runs kigenctl --socket SOCK ARGS; the completed process, text mode."""
    return subprocess.run(list(prefix) + [binary, "--socket", sock] + list(args),
                          capture_output=True, text=True, timeout=60)


def answer(sock, *args, **kw):
    """kigenctl --json ARGS: (exit status, the parsed answer or None)."""
    p = kigenctl(sock, "--json", *args, **kw)
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        print("not JSON (exit %d): %r %r" % (p.returncode, p.stdout[:200], p.stderr))
        return p.returncode, None


def keystores():
    """naccs: one certificate per state but not_yet_valid, and a broken file; web: the
    not_yet_valid one and a second copy of the expired one. 6 records, 5 unique, 1 error."""
    top = tempfile.mkdtemp(prefix="kigen-ctl-ks-")
    naccs, web = os.path.join(top, "naccs"), os.path.join(top, "web")
    os.makedirs(naccs)
    os.makedirs(web)
    for leaf, name in [("ok", "tanaka"), ("renewal_open", "suzuki"), ("critical", "sato"),
                       ("expired", "takahashi")]:
        shutil.copy(cert(leaf + ".pem"), os.path.join(naccs, name + ".pem"))
    shutil.copy(cert("truncated.p12"), os.path.join(naccs, "broken.p12"))
    shutil.copy(cert("not_yet_valid.pem"), os.path.join(web, "watanabe.pem"))
    shutil.copy(cert("expired.pem"), os.path.join(web, "copy.pem"))
    return top, naccs, web


def once_report(config, now):
    p = subprocess.run([KIGEND, "--config", config, "--once", "--format", "json", "--now", now],
                       capture_output=True, text=True, timeout=120)
    return json.loads(p.stdout)


def wait_for(pred, timeout):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return None


def case_commands():
    """Every subcommand, its output and its exit status."""
    global cases
    cases += 1
    top, naccs, web = keystores()
    sockdir = tempfile.mkdtemp(prefix="kigen-sock-")
    sock = os.path.join(sockdir, "kigen.sock")
    d = Daemon("ctl", [("naccs", naccs, "labels: { team: customs }"), ("web", web)],
               extra="socket: %s\n" % sock, now=NOW)
    expired = fact("expired", "sha256")
    try:
        check(d.start(), "READY=1: %s" % d.stderr())
        st = os.stat(sock) if os.path.exists(sock) else None
        check(st and stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660,
              "the socket is there with mode 0660: %s" % (oct(st.st_mode) if st else None))

        p = kigenctl(sock, "status")
        check(p.returncode == 2,
              "status exits 2 (critical and expired): %d %s" % (p.returncode, p.stderr))
        check("CRITICAL" in p.stdout and "6 (5 unique) in 2 keystores" in p.stdout,
              "status for people: %r" % p.stdout)
        # Japanese headings under a Japanese LANG (no such locale need exist), English under C;
        # the JSON the same under both.
        ja_env = dict(os.environ, LANG="ja_JP.UTF-8", LC_ALL="", LANGUAGE="")
        c_env = dict(os.environ, LANG="C", LC_ALL="", LANGUAGE="ja")
        p = subprocess.run([KIGENCTL, "--socket", sock, "status"], capture_output=True,
                           text=True, env=ja_env, timeout=60)
        check("の kigend: 緊急" in p.stdout and "  証明書" in p.stdout and
              "6 件（重複を除き 5 件）、キーストア 2 個" in p.stdout and "期限切れ" in p.stdout,
              "status in Japanese: %r" % p.stdout)
        p = subprocess.run([KIGENCTL, "--socket", sock, "status"], capture_output=True,
                           text=True, env=c_env, timeout=60)
        check("CRITICAL" in p.stdout and "  certificates     6 (5 unique)" in p.stdout,
              "LANG=C (LANGUAGE ignored under C) is English: %r" % p.stdout)
        runs = {}
        for name, env in (("ja", ja_env), ("C", c_env)):
            p = subprocess.run([KIGENCTL, "--socket", sock, "--json", "status"],
                               capture_output=True, text=True, env=env, timeout=60)
            runs[name] = json.loads(p.stdout) if p.returncode in (0, 1, 2) else None
        # generated_at is the instant of the answer: two answers may straddle a second.
        moving = ("generated_at", "scans", "files_read", "files_unchanged", "last_scan",
                  "scan_seconds", "scanning")
        same = [{k: v for k, v in (r or {}).items() if k not in moving} for r in runs.values()]
        check(runs["ja"] and same[0] == same[1], "--json is the same under both: %r" % runs)
        rc, a = answer(sock, "status")
        if check(a and a.get("ok") is True, "status --json: %r" % a):
            s = a["summary"]
            check((s["certificates"], s["unique"], s["ok"], s["renewal_open"], s["critical"],
                   s["expired"], s["not_yet_valid"], s["errors"], s["probes_down"]) ==
                  (6, 5, 1, 1, 1, 2, 1, 1, 0), "status summary: %r" % s)
            check(a["exit_status"] == 2 and rc == 2, "status exit_status: %r" % a)
            check(a["keystores"] == 2 and a["scans"] >= 1 and a["files_read"] >= 7,
                  "status scan facts: %r" % a)
            check(a["generated_at"] >= NOW and a["last_scan"] and a["last_scan"] >= NOW,
                  "times on the daemon's clock: %r" % a)

        # The socket's list answer is kigend --once's document at the same instant.
        rc, a = answer(sock, "list")
        check(rc == 2, "list exits 2: %d" % rc)
        if check(a and "ok" not in a, "list --json is the report document: %r" % (a or {}).keys()):
            want = once_report(d.config, a["generated_at"])
            check(a == want, "list --json equals kigend --once --now %s:\n%s\n%s"
                  % (a["generated_at"], json.dumps(a)[:600], json.dumps(want)[:600]))
            check(len(a["certificates"]) == 6 and len(a["errors"]) == 1 and a["probes"] == [],
                  "list --json records: %r" % a["summary"])

        p = kigenctl(sock, "list")
        check(p.returncode == 2, "list for people exits 2")
        for name in ["tanaka.pem", "suzuki.pem", "sato.pem", "takahashi.pem", "watanabe.pem",
                     "copy.pem", "broken.p12"]:
            check(name in p.stdout, "list shows %s: %r" % (name, p.stdout))
        check("\033[" not in p.stdout, "no colour when stdout is not a terminal")
        check(p.stdout.startswith("STATE         DAYS  NOT AFTER") and "renewal_open" in p.stdout
              and "ERROR            KEYSTORE          PATH: REASON" in p.stdout and
              "\nmalformed        naccs" in p.stdout, "list headings in English: %r" % p.stdout)
        # Japanese headings, states and error kinds under a Japanese LANG; the JSON the same,
        # byte for byte but for the instant it was made at.
        p = subprocess.run([KIGENCTL, "--socket", sock, "list"], capture_output=True, text=True,
                           env=ja_env, timeout=60)
        check(p.returncode == 2 and p.stdout.startswith("状態") and "有効期限" in p.stdout and
              "担当者" in p.stdout and "更新期間中" in p.stdout and "期限切れ" in p.stdout and
              "renewal_open" not in p.stdout and "破損しているか" in p.stdout and
              "証明書 6 件（重複を除き 5 件、" in p.stdout and "年" in p.stdout,
              "list in Japanese: %r" % p.stdout)
        lines = [ln for ln in p.stdout.splitlines() if "tanaka.pem" in ln or ln.startswith("状態")]
        check(len(lines) == 2 and lines[0].index("保管場所") < len(lines[0]),
              "the Japanese list has its heading line and rows: %r" % lines)
        jsons = {}
        for name, env in (("ja", ja_env), ("C", c_env)):
            for args in (("list",), ("show", expired), ("probes",)):
                p = subprocess.run([KIGENCTL, "--socket", sock, "--json"] + list(args),
                                   capture_output=True, text=True, env=env, timeout=60)
                # The instant of the answer (generated_at, and last_seen of what is seen now).
                at = re.search(r'"generated_at":"([^"]*)"', p.stdout)
                jsons[(name, args)] = (p.returncode,
                                       p.stdout.replace(at.group(1), "") if at else p.stdout)
        for args in (("list",), ("show", expired), ("probes",)):
            check(jsons[("ja", args)] == jsons[("C", args)] and jsons[("C", args)][1],
                  "%s --json is the same under both: %r" % (args, jsons[("ja", args)][1][:200]))

        # Filters, and the exit status over what is shown.
        for args, n, errors, status in [
                (["--state", "expired"], 2, 1, 2),
                (["--state", "renewal_open"], 1, 1, 1),
                (["--within", "30d"], 4, 1, 2),
                (["--within", "3d"], 3, 1, 2),
                (["--keystore", "web"], 2, 0, 2),
                (["--keystore", "web", "--state", "not_yet_valid"], 1, 0, 1),
                (["--keystore", "web", "--state", "ok"], 0, 0, 0)]:
            rc, a = answer(sock, "list", *args)
            check(a and len(a["certificates"]) == n and len(a["errors"]) == errors and rc == status,
                  "list %s: %s records, %s errors, exit %d; want %d, %d, %d"
                  % (" ".join(args), a and len(a["certificates"]), a and len(a["errors"]), rc,
                     n, errors, status))
            p = kigenctl(sock, "list", *args)
            check(p.returncode == status, "list %s for people exits %d: %d"
                  % (" ".join(args), status, p.returncode))
        p = kigenctl(sock, "list", "--keystore", "nosuch")
        check(p.returncode == 3 and "unknown keystore" in p.stderr,
              "an unknown keystore is no all-clear: %d %r" % (p.returncode, p.stderr))
        p = kigenctl(sock, "list", "--state", "bogus")
        check(p.returncode == 3 and "--state" in p.stderr, "a bad --state is a usage error")
        p = kigenctl(sock, "list", "--within", "30")
        check(p.returncode == 3 and "--within" in p.stderr, "a bad --within is a usage error")

        # show: facts, both locations, and the alert history once the alert went out.
        check(d.wait_alert(lambda x: x["msgid"] == "cert.expired", 10), "cert.expired sent")
        rc, a = answer(sock, "show", expired)
        if check(rc == 0 and a and a.get("ok") is True, "show --json: %r" % a):
            check(a["sha256"] == expired and a["subject"] == fact("expired", "subject") and
                  a["serial"] == fact("expired", "serial") and a["state"] == "expired" and
                  a["not_after"] == "2026-11-01T00:00:00Z" and a["days_left"] == -24,
                  "show facts: %r" % a)
            check([(loc["keystore"], loc["path"], loc["labels"]) for loc in a["locations"]] ==
                  [("naccs", os.path.join(naccs, "takahashi.pem"), {"team": "customs"}),
                   ("web", os.path.join(web, "copy.pem"), {})], "show locations: %r" % a)
            check([x["event"] for x in a["alerts"]] == ["cert.expired"] and
                  a["alerts"][0]["sent"] >= NOW, "show alert history: %r" % a["alerts"])
        p = kigenctl(sock, "show", expired.upper())
        check(p.returncode == 0 and "takahashi.pem" in p.stdout and "copy.pem" in p.stdout and
              "cert.expired" in p.stdout, "show for people: %r" % p.stdout)
        check("\nstate          expired\n" in p.stdout and "\nalerts sent\n" in p.stdout,
              "show labels in English: %r" % p.stdout)
        p = subprocess.run([KIGENCTL, "--socket", sock, "show", expired], capture_output=True,
                           text=True, env=ja_env, timeout=60)
        check(p.returncode == 0 and "\n状態           期限切れ\n" in p.stdout and
              "\n送信済みの通知\n" in p.stdout and "2026年11月1日(日)" in p.stdout and
              "cert.expired" in p.stdout, "show in Japanese: %r" % p.stdout)
        p = kigenctl(sock, "show", "0" * 64)
        check(p.returncode == 1 and "unknown certificate" in p.stderr,
              "show of an unknown certificate exits 1: %d %r" % (p.returncode, p.stderr))

        rc, a = answer(sock, "probes")
        check(rc == 0 and a == {"ok": True, "probes": []}, "probes --json with probing off: %r" % a)
        p = kigenctl(sock, "probes")
        check(p.returncode == 0 and "No probe" in p.stdout, "probes for people: %r" % p.stdout)
        p = subprocess.run([KIGENCTL, "--socket", sock, "probes"], capture_output=True,
                           text=True, env=ja_env, timeout=60)
        check(p.returncode == 0 and "プローブの対象が設定されていません。" in p.stdout,
              "probes in Japanese: %r" % p.stdout)

        p = kigenctl(sock, "metrics")
        check(p.returncode == 0 and 'kigen_cert_not_after_seconds{keystore="naccs"' in p.stdout and
              'subject_cn="' in p.stdout and 'sha256="%s"' % expired not in p.stdout,
              "metrics prints the Prometheus text, lean by default (SPEC §10)")
        rc, a = answer(sock, "metrics")
        check(rc == 0 and a and a["ok"] is True and a["metrics"].strip() == p.stdout.strip(),
              "metrics --json carries the same text")

        # rescan and reload as root.
        before = answer(sock, "status")[1]["scans"]
        p = kigenctl(sock, "rescan")
        check(p.returncode == 0 and p.stdout == "ok\n",
              "rescan as root: %r %r" % (p.stdout, p.stderr))
        check(wait_for(lambda: answer(sock, "status")[1]["scans"] > before, 10),
              "rescan made a scan")
        p = kigenctl(sock, "reload")
        check(p.returncode == 0 and p.stdout == "ok\n",
              "reload as root: %r %r" % (p.stdout, p.stderr))
        check(d.wait_alert(lambda x: x["msgid"] == "config.reloaded", 5), "reload reloaded")
        good = open(d.config).read()
        with open(d.config, "a") as f:
            f.write("bogus_key: 1\n")
        p = kigenctl(sock, "reload")
        check(p.returncode == 1 and "bogus_key" in p.stderr,
              "a rejected reload says why and exits 1: %d %r" % (p.returncode, p.stderr))
        with open(d.config, "w") as f:
            f.write(good)

        # The socket from the configuration, and a daemon that cannot be reached.
        p = subprocess.run([KIGENCTL, "--config", d.config, "status"], capture_output=True,
                           text=True, timeout=60)
        check(p.returncode == 2, "--config finds the socket: %d %r" % (p.returncode, p.stderr))
        gone = os.path.join(sockdir, "nothing-here.sock")
        p = kigenctl(gone, "status")
        check(p.returncode == 3 and p.stderr.startswith(
            "kigenctl: cannot connect to %s: No such file or directory" % gone),
            "an unreachable daemon exits 3 naming the socket: %d %r" % (p.returncode, p.stderr))
        p = kigenctl(gone, "list")
        check(p.returncode == 3, "list against no daemon exits 3")
        check(d.stop() == 0, "the daemon stops cleanly")
        check(not os.path.exists(sock), "the socket file goes with the daemon")
    finally:
        d.close()
        shutil.rmtree(top, ignore_errors=True)
        shutil.rmtree(sockdir, ignore_errors=True)


def case_other_uid():
    """rescan and reload need root or the daemon's uid; another uid may only look."""
    global cases
    cases += 1
    top, naccs, web = keystores()
    sockdir = tempfile.mkdtemp(prefix="kigen-sock-")
    sock = os.path.join(sockdir, "kigen.sock")
    os.chmod(sockdir, 0o711)
    # A copy nobody can run, whatever the permissions of the build tree.
    ctl = os.path.join(sockdir, "kigenctl")
    shutil.copy(KIGENCTL, ctl)
    os.chmod(ctl, 0o755)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    d = Daemon("ctl-uid", [("naccs", naccs), ("web", web)], extra="socket: %s\n" % sock, now=NOW)
    try:
        check(d.start(), "READY=1: %s" % d.stderr())
        # 0660 root:root (or group kigen, which nobody is not in): refused at connect.
        p = kigenctl(sock, "status", prefix=nobody, binary=ctl)
        check(p.returncode == 3 and "cannot connect to %s: Permission denied" % sock in p.stderr,
              "mode 0660 keeps other users out: %d %r" % (p.returncode, p.stderr))
        # Let everyone connect: the uid check is what stands between them and rescan.
        os.chmod(sock, 0o666)
        p = kigenctl(sock, "status", prefix=nobody, binary=ctl)
        check(p.returncode == 2, "another uid may ask for status: %d %r" % (p.returncode, p.stderr))
        rc, a = answer(sock, "list", prefix=nobody, binary=ctl)
        check(rc == 2 and a and len(a["certificates"]) == 6, "and list")
        before = answer(sock, "status")[1]["scans"]
        reloads = len([x for x in d.alerts() if x["msgid"] == "config.reloaded"])
        for cmd in ["rescan", "reload"]:
            p = kigenctl(sock, cmd, prefix=nobody, binary=ctl)
            check(p.returncode == 1 and
                  "permission denied: %s needs root or the daemon's user" % cmd in p.stderr,
                  "%s as uid 65534 is refused: %d %r" % (cmd, p.returncode, p.stderr))
        time.sleep(0.5)
        check(answer(sock, "status")[1]["scans"] == before, "no scan was started")
        check(len([x for x in d.alerts(0.2) if x["msgid"] == "config.reloaded"]) == reloads,
              "no reload happened")
        p = kigenctl(sock, "rescan")
        check(p.returncode == 0, "root may still rescan")
    finally:
        d.close()
        shutil.rmtree(top, ignore_errors=True)
        shutil.rmtree(sockdir, ignore_errors=True)


def raw(sock):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock)
    return s


def read_line(s):
    """One answer line, parsed; None when the daemon closed the connection first."""
    buf = bytearray()
    while not buf.endswith(b"\n"):
        try:
            data = s.recv(1 << 20)
        except ConnectionResetError:
            return None
        if not data:
            return None
        buf += data
    return json.loads(buf)


def is_closed(s):
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def case_raw_clients():
    """The socket's limits, with 2,000 files so that answers outgrow the socket buffer."""
    global cases
    cases += 1
    top = tempfile.mkdtemp(prefix="kigen-ctl-bulk-")
    for i in range(2000):
        shutil.copy(cert("ok.pem"), os.path.join(top, "user%04d.pem" % i))
    sockdir = tempfile.mkdtemp(prefix="kigen-sock-")
    sock = os.path.join(sockdir, "kigen.sock")
    d = Daemon("ctl-raw", [("bulk", top)], extra="socket: %s\n" % sock, now=NOW)
    try:
        check(d.start(), "READY=1: %s" % d.stderr())
        s = raw(sock)
        for req, want in [(b"{\"cmd\":\n", "malformed JSON"),
                          (b"[1,2]\n", "must be a JSON object"),
                          (b"{\"cmd\":\"shutdown\"}\n", "unknown cmd \"shutdown\""),
                          (b"{\"cmd\":\"status\",\"x\":1}\n", "unknown field \"x\"")]:
            s.sendall(req)
            a = read_line(s)
            check(a and a.get("ok") is False and want in a.get("error", ""),
                  "%r is answered with an error: %r" % (req, a))
        s.sendall(b"{\"cmd\":\"status\"}\n")
        a = read_line(s)
        check(a and a.get("ok") is True, "the connection serves on after bad requests: %r" % a)
        s.close()

        # A 1 MiB line: refused, the connection closed, the daemon fine.
        s = raw(sock)
        try:
            s.sendall(b"x" * (1 << 20))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon stopped reading after 64 KiB and closed
        a = read_line(s)
        check(a == {"ok": False, "error": "request line too long"}, "1 MiB line: %r" % a)
        check(is_closed(s), "and the connection is closed")
        s.close()

        # A client that asks for a large answer three times and never reads.
        hog = raw(sock)
        hog.sendall(b"{\"cmd\":\"list\"}\n" * 3)
        time.sleep(0.3)
        t0 = time.time()
        p = kigenctl(sock, "status")
        took = time.time() - t0
        check(p.returncode == 0,
              "status while a client does not read: %d %r" % (p.returncode, p.stderr))
        check(took < 10, "status is not held up by the hog (who never reads): %.2f s" % took)
        # The hog reads at last: three whole answers, in order.
        hog.settimeout(30)
        got = [read_line(hog) for _ in range(3)]
        check(all(g and len(g["certificates"]) == 2000 for g in got),
              "the hog gets its three answers: %r" % [g and g["summary"] for g in got])
        hog.close()

        # A client gone mid-answer.
        s = raw(sock)
        s.sendall(b"{\"cmd\":\"list\"}\n")
        s.recv(65536)
        s.close()
        time.sleep(0.2)
        check(d.proc.poll() is None, "the daemon outlives a client gone mid-answer")

        # 200 clients at once while a scan runs (every file changed: all are read again).
        for i in range(2000):
            os.utime(os.path.join(top, "user%04d.pem" % i), (time.time(), time.time() + 1))
        kigenctl(sock, "rescan")
        clients = [raw(sock) for _ in range(200)]
        t0 = time.time()
        for c in clients:
            c.sendall(b"{\"cmd\":\"status\"}\n")
        answers = [read_line(c) for c in clients]
        took = time.time() - t0
        check(all(a and a.get("ok") is True for a in answers),
              "200 clients at once get their status: %d" % len([a for a in answers if a]))
        print("200 status answers in %.3f s; %d said a scan was running"
              % (took, len([a for a in answers if a and a.get("scanning")])))
        for c in clients:
            c.close()
        p = kigenctl(sock, "status")
        check(p.returncode == 0 and d.proc.poll() is None, "all well after: %d" % p.returncode)
    finally:
        d.close()
        shutil.rmtree(top, ignore_errors=True)
        shutil.rmtree(sockdir, ignore_errors=True)


# Binds and listens on argv[1] as systemd would, notes the inode in argv[2], then becomes
# argv[3:] with the socket as fd 3 (LISTEN_FDS=1, LISTEN_PID: its own pid after exec).
ACTIVATE = """
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(64)
open(sys.argv[2], "w").write(str(os.stat(sys.argv[1]).st_ino))
if s.fileno() == 3:
    os.set_inheritable(3, True)
else:
    os.dup2(s.fileno(), 3)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
os.execv(sys.argv[3], sys.argv[3:])
"""


def case_socket_activation():
    """A socket handed over by systemd is served; the configured path is not bound."""
    global cases
    cases += 1
    top, naccs, web = keystores()
    sockdir = tempfile.mkdtemp(prefix="kigen-sock-")
    handed = os.path.join(sockdir, "activated.sock")
    configured = os.path.join(sockdir, "configured.sock")
    inode = os.path.join(sockdir, "inode")
    d = Daemon("ctl-act", [("naccs", naccs)], extra="socket: %s\n" % configured, now=NOW)
    try:
        check(d.start(prefix=[sys.executable, "-c", ACTIVATE, handed, inode]),
              "READY=1: %s" % d.stderr())
        p = kigenctl(handed, "status")
        check(p.returncode == 2, "the handed-over socket answers: %d %r" % (p.returncode, p.stderr))
        check(str(os.stat(handed).st_ino) == open(inode).read(), "the very socket systemd made")
        check(not os.path.exists(configured), "the configured path is left alone")
        check(d.stop() == 0, "stops cleanly")
        check(os.path.exists(handed), "an inherited socket file stays (systemd owns it)")
    finally:
        d.close()
        shutil.rmtree(top, ignore_errors=True)
        shutil.rmtree(sockdir, ignore_errors=True)


def main():
    if os.geteuid() != 0:
        print("test_kigenctl needs root (it runs kigenctl as another user)")
        sys.exit(1)
    case_commands()
    case_other_uid()
    case_raw_clients()
    case_socket_activation()
    finish("test_kigenctl", cases)


if __name__ == "__main__":
    main()
