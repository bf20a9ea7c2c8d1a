#!/usr/bin/env python3
"""End to end: what kigend and kigenctl say to the person at the command line follows LANG
(issue 14): --help, usage errors, configuration errors and --check-config. Under a Japanese
LANG (no such locale need exist: kigen reads its own catalogue) the words are Japanese;
exit statuses and the FILE:LINE:COLUMN: PATH: location of an error are the same as in English.
"""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kigentest import KIGEND, check, finish  # noqa: E402

KIGENCTL = os.environ["KIGENCTL"]
JA = dict(os.environ, LANG="ja_JP.UTF-8", LC_ALL="", LC_MESSAGES="", LANGUAGE="")
C = dict(os.environ, LANG="C", LC_ALL="", LC_MESSAGES="", LANGUAGE="ja")
# Kana or kanji: UTF-8 lead bytes E3..E9.
JAPANESE = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")
cases = 0


def run(args, env):
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)


def both(args):
    return run(args, C), run(args, JA)


def case_help():
    """--help of both programs, and of one kigenctl command."""
    global cases
    cases += 1
    for args, en_word, ja_word in (([KIGEND, "--help"], "Watches certificates", "デジタル証明書を監視し"),
                                   ([KIGENCTL, "--help"], "Asks a running kigend", "問い合わせます"),
                                   ([KIGENCTL, "list", "--help"], "Lists the certificates",
                                    "一覧表示します")):
        en, ja = both(args)
        check(en.returncode == 0 and ja.returncode == 0, "%s: exit 0: %d %d"
              % (args, en.returncode, ja.returncode))
        check(en_word in en.stdout and not JAPANESE.search(en.stdout),
              "%s under LANG=C (LANGUAGE ignored) is English: %r" % (args, en.stdout[:200]))
        check(ja_word in ja.stdout, "%s under ja_JP.UTF-8 is Japanese: %r" % (args, ja.stdout[:300]))
        # Options and their arguments are not translated.
        for opt in re.findall(r"--[a-z-]+", en.stdout):
            check(opt in ja.stdout, "%s: %s is in the Japanese text too" % (args, opt))


def case_usage_errors():
    """A usage error: the same exit status, the words in the user's language."""
    global cases
    cases += 1
    for args, ja_word in (([KIGENCTL, "bogus"], "というコマンドはありません"),
                          ([KIGENCTL, "status", "--state", "ok"], "list と一緒に"),
                          ([KIGEND, "--format", "xml", "--once"], "json か table"),
                          ([KIGEND, "--now", "yesterday"], "RFC 3339")):
        en, ja = both(args)
        check(en.returncode == 3 and ja.returncode == 3,
              "%s exits 3 in both: %d %d" % (args, en.returncode, ja.returncode))
        check(not JAPANESE.search(en.stderr), "%s in English: %r" % (args, en.stderr))
        check(ja_word in ja.stderr and JAPANESE.search(ja.stderr),
              "%s in Japanese: %r" % (args, ja.stderr))


def case_check_config():
    """kigend --check-config: a bad file's error at the same FILE:LINE:COLUMN: PATH: in both
    languages, the reason in Japanese under ja; a good one is valid in both."""
    global cases
    cases += 1
    d = tempfile.mkdtemp(prefix="kigen-i18n-cli-")
    bad = {
        "language: fr\n": (r"bad\.yaml:1:11: language: ", "言語 \"fr\""),
        "keystores:\n  - { name: a, path: /tmp, bogus: 1 }\n":
            (r"bad\.yaml:2:28: keystores\[0\]: ", "\"bogus\" というキー"),
        "policy: { renew_before: 5q }\n": (r"bad\.yaml:1:25: policy\.renew_before: ", "期間 \"5q\""),
        "keystores:\n  - { name: a, path: /tmp }\n  - { name: a, path: /srv }\n":
            (r"bad\.yaml:3:\d+: keystores\[1\]: ", "キーストア名 \"a\" が重複"),
        "keystores: [\n": (r"bad\.yaml:\d+:\d+: ", "YAML の構文エラー"),
    }
    path = os.path.join(d, "bad.yaml")
    for text, (where, ja_word) in bad.items():
        with open(path, "w") as f:
            f.write(text)
        en, ja = both([KIGEND, "--check-config", path])
        check(en.returncode == 3 and ja.returncode == 3,
              "%r: exit 3 in both: %d %d" % (text, en.returncode, ja.returncode))
        loc = re.compile(r"^kigend: " + re.escape(d) + "/" + where)
        m_en, m_ja = loc.match(en.stderr), loc.match(ja.stderr)
        check(m_en and m_ja and m_en.group(0) == m_ja.group(0),
              "%r: the same location in both: %r %r" % (text, en.stderr, ja.stderr))
        check(not JAPANESE.search(en.stderr), "%r: English under C: %r" % (text, en.stderr))
        check(ja_word in ja.stderr, "%r: Japanese under ja: %r" % (text, ja.stderr))
    good = os.path.join(d, "good.yaml")
    with open(good, "w") as f:
        f.write("keystores:\n  - { name: a, path: %s }\nprobes: { targets: [] }\n" % d)
    en, ja = both([KIGEND, "--check-config", good])
    check(en.returncode == 0 and "configuration is valid (1 keystores, 0 probe targets)" in en.stdout,
          "valid in English: %r" % en.stdout)
    check(ja.returncode == 0 and "設定に問題はありません（キーストア 1 個、プローブ対象 0 件）" in ja.stdout,
          "valid in Japanese: %r" % ja.stdout)
    # A bad row of the holders' register: FILE:LINE: in both, the reason in Japanese under ja.
    reg = os.path.join(d, "holders.csv")
    with open(reg, "w") as f:
        f.write("holder,email,subject,language\n田中,t@example.co.jp,CN=tanaka,fr\n")
    with open(good, "a") as f:
        f.write("holders: { register: %s }\n" % reg)
    en, ja = both([KIGEND, "--check-config", good])
    check(en.returncode == 3 and ja.returncode == 3, "a bad register row: exit 3 in both")
    check("holders.csv:2: 'language' is 'fr', not en or ja" in en.stderr,
          "the register row in English: %r" % en.stderr)
    check("holders.csv:2: 'language' が 'fr' です" in ja.stderr,
          "the register row in Japanese: %r" % ja.stderr)
    # The file that is not there: the system's own words (strerror) and exit 3 in both.
    en, ja = both([KIGEND, "--check-config", os.path.join(d, "none.yaml")])
    check(en.returncode == 3 and ja.returncode == 3 and en.stderr == ja.stderr,
          "a missing file: %r %r" % (en.stderr, ja.stderr))


case_help()
case_usage_errors()
case_check_config()
finish("test_i18n_cli", cases)
