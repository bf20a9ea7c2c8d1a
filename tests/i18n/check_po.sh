#!/bin/sh
# Every msgid of the sources (po/kigen.pot, made by xgettext in the build) is in po/ja.po and
# translated, nothing is fuzzy or obsolete, and msgfmt --check accepts it (formats match).
# Usage: check_po.sh SRCDIR BUILDDIR
set -eu
src=$1 build=$2
pot=$build/po/kigen.pot
[ -s "$pot" ] || { echo "no $pot: build the kigen_pot target" >&2; exit 1; }
fail=0
for po in "$src"/po/*.po; do
    # msgcmp: each msgid of the .pot must have a translation in the .po.
    if ! msgcmp "$po" "$pot"; then
        echo "$po: msgids of the sources missing or untranslated (msgcmp above)" >&2
        fail=1
    fi
    stats=$(LC_ALL=C msgfmt --check --statistics -o /dev/null "$po" 2>&1) || {
        echo "$po: msgfmt --check: $stats" >&2
        fail=1
        continue
    }
    echo "$po: $stats"
    case $stats in
    *untranslated* | *fuzzy*) echo "$po: untranslated or fuzzy entries" >&2; fail=1 ;;
    esac
    # Entries no source uses any more: msgmerge would mark them obsolete (#~).
    if grep -q '^#~' "$po"; then
        echo "$po: obsolete entries (#~): remove them" >&2
        fail=1
    fi
    # Plural forms: src/i18n.c takes form 0 and supports nplurals=1 only (Japanese).
    grep -q '"Plural-Forms: nplurals=1; plural=0;\\n"' "$po" ||
        { echo "$po: Plural-Forms must be nplurals=1 (src/i18n.c)" >&2; fail=1; }
done
exit $fail
