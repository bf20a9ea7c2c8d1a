#!/bin/sh
# units/kigen.catalog: every MESSAGE_ID has a Japanese (ja) entry, and journalctl shows it
# under LANG=ja_JP.UTF-8 and the English one under LANG=C. journalctl --update-catalog runs in
# a scratch root; the ja_JP.UTF-8 locale is made with localedef into a scratch LOCPATH, so the
# machine needs no Japanese locale of its own. Usage: check_catalog.sh SRCDIR
set -eu
catalog=$1/units/kigen.catalog
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
mkdir -p "$tmp/root/usr/lib/systemd/catalog" "$tmp/locale"
cp "$catalog" "$tmp/root/usr/lib/systemd/catalog/"
journalctl --root="$tmp/root" --update-catalog
localedef -i ja_JP -f UTF-8 "$tmp/locale/ja_JP.UTF-8"
ids=$(sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' "$catalog")
[ -n "$ids" ] || { echo "no entries in $catalog" >&2; exit 1; }
for id in $ids; do
    grep -q "^-- $id ja\$" "$catalog" || { echo "$id: no ja entry" >&2; fail=1; continue; }
    en=$(LANG=C LC_ALL=C journalctl --root="$tmp/root" --dump-catalog "$id" | sed -n 2p)
    ja=$(LOCPATH="$tmp/locale" LC_ALL= LANG=ja_JP.UTF-8 \
        journalctl --root="$tmp/root" --dump-catalog "$id" | sed -n 2p)
    case $en in Subject:*[A-Za-z]*) ;; *) echo "$id: LANG=C shows '$en'" >&2; fail=1 ;; esac
    # Japanese: the Subject holds kana or kanji (UTF-8 lead bytes E3..E9).
    if ! printf '%s' "$ja" | LC_ALL=C grep -q "$(printf '[\343-\351]')"; then
        echo "$id: LANG=ja_JP.UTF-8 shows '$ja'" >&2
        fail=1
    fi
    [ "$en" != "$ja" ] || { echo "$id: the same in both languages" >&2; fail=1; }
done
[ $fail = 0 ] && echo "kigen.catalog: $(echo $ids | wc -w) entries, each in en and ja"
exit $fail
