#!/usr/bin/env python3
"""Large inputs (issue #8), never part of the tests: kigend --once on

  - a keystore tree of 1,000,000 certificate files (1,000 directories of 1,000), next to
    100,000 (100 directories of 1,000);
  - one PEM bundle of 100,000 certificates, next to 10,000;
  - one JKS of 10,000 trusted-certificate entries, next to 1,000;
  - a configuration of 10,000 lines (2,000 keystores of 5 lines), next to 1,000 and 20,000
    (kigen refuses a configuration file larger than 1 MiB: about 27,000 such lines).

Each is measured with /usr/bin/time -v (wall time, peak RSS) and the report is checked to hold
every certificate; the table ends with the growth factor of each pair, which is about the
size factor (10) when nothing is quadratic.

Every certificate is a distinct one made by bench/mkcorpus (OpenSSL); the JKS files are
written by a small Java program through java.security.KeyStore (javac and java from
default-jdk-headless). Hard links would keep the tree small on disk, but kigen reads a file
reached twice (same device and inode) once, so a tree of links measures the walk and not the
reading: the 1,000,000 files are real ones (about 4 GB; 16 KiB of directory per 1,000).

Usage: bench/large_inputs.py BUILD_DIR [--only files|bundle|jks|config] [--small]
  --small   a tenth of every size, to try the script quickly
Corpora are kept in bench/out/large/ (git-ignored) and made again only when missing.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out", "large")
NOW = "2030-01-01T00:00:00Z"

JAVA = r"""
import java.io.*;
import java.security.KeyStore;
import java.security.cert.*;
import java.util.*;

/* MkJks BUNDLE.pem OUT N PASSWORD TYPE: the first N certificates of BUNDLE as trusted entries. */
public class MkJks {
    public static void main(String[] a) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        Collection<? extends Certificate> all;
        try (InputStream in = new BufferedInputStream(new FileInputStream(a[0]))) {
            all = cf.generateCertificates(in);
        }
        int n = Integer.parseInt(a[2]);
        KeyStore ks = KeyStore.getInstance(a[4]);
        ks.load(null, null);
        int i = 0;
        for (Certificate c : all) {
            if (i == n)
                break;
            ks.setCertificateEntry(String.format("cert%06d", i++), c);
        }
        if (i != n)
            throw new IllegalStateException("the bundle holds only " + i + " certificates");
        try (OutputStream out = new FileOutputStream(a[1])) {
            ks.store(out, a[3].toCharArray());
        }
    }
}
"""


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def need(*tools):
    for t in tools:
        if not shutil.which(t) and not os.access(t, os.X_OK):
            sys.exit("large_inputs needs %s (apt-get install default-jdk-headless time)" % t)


def made(path):
    return os.path.exists(path + ".done")


def done(path):
    open(path + ".done", "w").close()


def tree(mk, n, per_dir=1000):
    """n certificate files in n/per_dir directories."""
    top = os.path.join(OUT, "tree%d" % n)
    if made(top):
        return top
    shutil.rmtree(top, ignore_errors=True)
    flat = top + ".flat"
    shutil.rmtree(flat, ignore_errors=True)
    t0 = time.time()
    print("making %d certificate files (mkcorpus)..." % n, flush=True)
    run([mk, flat, str(n), "0"], stdout=subprocess.DEVNULL)
    os.makedirs(top)
    names = sorted(os.listdir(flat))
    for i, name in enumerate(names):
        d = os.path.join(top, "d%04d" % (i // per_dir))
        if i % per_dir == 0:
            os.makedirs(d)
        os.rename(os.path.join(flat, name), os.path.join(d, name))
    os.rmdir(flat)
    done(top)
    print("  %.0f s" % (time.time() - t0), flush=True)
    return top


def bundle(mk, n):
    path = os.path.join(OUT, "bundle%d" % n)
    if made(path):
        return path
    shutil.rmtree(path, ignore_errors=True)
    print("making a bundle of %d certificates (mkcorpus)..." % n, flush=True)
    run([mk, path, "0", "0", str(n)], stdout=subprocess.DEVNULL)
    done(path)
    return path


def jks(mk, n, kind="JKS"):
    path = os.path.join(OUT, "%s%d" % (kind.lower(), n))
    if made(path):
        return path
    need("javac", "java")
    src = bundle(mk, max(n, 10000))
    classes = os.path.join(OUT, "java")
    if not os.path.exists(os.path.join(classes, "MkJks.class")):
        os.makedirs(classes, exist_ok=True)
        with open(os.path.join(classes, "MkJks.java"), "w") as f:
            f.write(JAVA)
        run(["javac", "-d", classes, os.path.join(classes, "MkJks.java")])
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    print("making a %s of %d entries (java.security.KeyStore)..." % (kind, n), flush=True)
    run(["java", "-cp", classes, "MkJks", os.path.join(src, "bundle.pem"),
         os.path.join(path, "store.%s" % kind.lower()), str(n), "bench-pass", kind])
    done(path)
    return path


def config_for(name, keystores, extra=""):
    """A configuration file; keystores: [(name, path, more yaml lines)]."""
    path = os.path.join(OUT, name + ".yaml")
    with open(os.path.join(OUT, "bench.pass"), "w") as f:
        f.write("bench-pass\n")
    lines = ["state_dir: %s/state" % OUT, "timezone: UTC", "probes: { targets: [] }",
             "alerts: { journald: false }", "keystores:"]
    for ks in keystores:
        lines += ["  - name: %s" % ks[0], "    path: %s" % ks[1]] + list(ks[2:])
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n" + extra)
    return path


def big_config(mk, n_lines):
    """About n_lines lines: keystores of 5 lines each, every one a directory with one file."""
    n = max(1, n_lines // 5)
    top = os.path.join(OUT, "cfg%d" % n)
    if not made(top):
        shutil.rmtree(top, ignore_errors=True)
        src = tree(mk, 100000)
        files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(src) for f in fs)
        os.makedirs(top)
        for i in range(n):
            d = os.path.join(top, "k%06d" % i)
            os.makedirs(d)
            os.link(files[i], os.path.join(d, os.path.basename(files[i])))
        done(top)
    keystores = [("ks%06d" % i, os.path.join(top, "k%06d" % i),
                  "    recursive: false", "    include: [\"*.pem\", \"*.der\"]",
                  "    labels: { team: t%06d }" % i) for i in range(n)]
    path = config_for("config%d" % n_lines, keystores)
    with open(path) as f:
        lines = sum(1 for _ in f)
    return path, n, lines


def measure(kigend, config):
    """(wall s, CPU s, peak RSS MiB, certificates in the report, errors) of kigend --once."""
    out = os.path.join(OUT, "report.json")
    tv = os.path.join(OUT, "time.txt")
    with open(out, "wb") as f:
        p = subprocess.run(["/usr/bin/time", "-v", "-o", tv, kigend, "--config", config, "--once",
                            "--format", "json", "--now", NOW], stdout=f, stderr=subprocess.PIPE)
    text = open(tv).read()
    wall = text.split("Elapsed (wall clock) time (h:mm:ss or m:ss): ")[1].split("\n")[0]
    parts = [float(x) for x in wall.split(":")]
    secs = sum(v * 60 ** (len(parts) - 1 - i) for i, v in enumerate(parts))
    cpu = sum(float(re.search(r"%s time \(seconds\): ([\d.]+)" % w, text).group(1))
              for w in ("User", "System"))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    with open(out, "rb") as f:
        head = f.read(4096).decode("utf-8", "replace")
    m = re.search(r'"certificates":\s*(\d+)', head)
    e = re.search(r'"errors":\s*(\d+)', head)
    if p.returncode not in (0, 1, 2):
        print("kigend --once exited %d: %s" % (p.returncode, p.stderr[-500:]))
    os.unlink(out)
    return secs, cpu, rss, int(m.group(1)) if m else -1, int(e.group(1)) if e else -1


ROWS = []
KIGEND = None


def row(label, short, n, config, expect):
    """The best of two runs (wall time), as a table row."""
    best = None
    for _ in range(2):
        r = measure(KIGEND, config)
        if best is None or r[0] < best[0]:
            best = r
    secs, cpu, rss, certs, errors = best
    note = "" if certs == expect and errors == 0 else \
        " (report: %d certificates, %d errors; %d expected)" % (certs, errors, expect)
    ROWS.append((short, n, secs, cpu, rss))
    print("| %-46s | %8.2f s | %8.2f s | %8.0f MiB | %5.2f |%s"
          % (label, secs, cpu, rss, os.getloadavg()[0], note), flush=True)


def factor(a, b):
    (la, na, sa, ca, ra), (lb, nb, sb, cb, rb) = ROWS[a], ROWS[b]
    print("| %-46s | x%8.1f | x%8.1f | x%8.1f     | size x%.0f"
          % ("growth %s -> %s" % (la, lb), sb / sa, cb / ca, rb / ra, nb / na), flush=True)


def main():
    global KIGEND
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--only", choices=["files", "bundle", "jks", "config"])
    ap.add_argument("--small", action="store_true")
    args = ap.parse_args()
    KIGEND = os.path.abspath(os.path.join(args.build, "kigend"))
    mk = os.path.abspath(os.path.join(args.build, "bench", "mkcorpus"))
    need(KIGEND, mk, "/usr/bin/time")
    os.makedirs(OUT, exist_ok=True)
    k = 10 if args.small else 1
    print("Machine: %d cores, %s; kigend %s" % (os.cpu_count(), open("/proc/cpuinfo").read().split(
        "model name\t: ")[1].split("\n")[0], KIGEND))
    print()
    print("| %-46s | %10s | %10s | %12s | %5s |" % ("kigend --once --format json", "wall",
                                                   "CPU", "peak RSS", "load"))
    print("|%s|%s|%s|%s|%s|" % ("-" * 48, "-" * 12, "-" * 12, "-" * 14, "-" * 7))
    first = len(ROWS)
    if args.only in (None, "files"):
        for n in (100000 // k, 1000000 // k):
            top = tree(mk, n)
            cfg = config_for("files%d" % n, [("tree", top, "    recursive: true")])
            row("%d files in %d directories" % (n, n // 1000), "%dk files" % (n // 1000), n,
                cfg, n)
        factor(first, first + 1)
        first = len(ROWS)
    if args.only in (None, "bundle"):
        for n in (10000 // k, 100000 // k):
            b = bundle(mk, n)
            cfg = config_for("bundle%d" % n, [("bundle", os.path.join(b, "bundle.pem"),
                                               "    max_file_size: 1GiB")])
            row("PEM bundle of %d certificates, 1 file" % n, "%dk PEM" % (n // 1000), n, cfg, n)
        factor(first, first + 1)
        first = len(ROWS)
    if args.only in (None, "jks"):
        for n in (1000 // k, 10000 // k):
            j = jks(mk, n)
            cfg = config_for("jks%d" % n, [("jks", os.path.join(j, "store.jks"),
                                            "    max_file_size: 1GiB",
                                            "    passwords: [ { file: %s/bench.pass } ]" % OUT)])
            row("JKS of %d entries, password known" % n, "%d JKS" % n, n, cfg, n)
        factor(first, first + 1)
        first = len(ROWS)
    if args.only in (None, "config"):
        # A configuration file may not exceed 1 MiB (src/config.c): about 27,000 such lines.
        for n_lines in (1000 // k, 10000 // k, 20000 // k):
            cfg, n, lines = big_config(mk, n_lines)
            row("configuration of %d lines, %d keystores" % (lines, n), "%d lines" % lines, lines,
                cfg, n)
        factor(first, first + 1)
        factor(first + 1, first + 2)


if __name__ == "__main__":
    main()
