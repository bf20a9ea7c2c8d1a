#!/bin/sh
# `make demo`, last part: runs the daemon on the demo for a few seconds so that it mails the
# holders, then prints one of the messages as a mail reader shows it. Nothing is sent: the
# demo's sendmail (conf/demo.yaml) keeps each message as a file in DEMO/mail.
#
# Usage: conf/demo-mail.sh BUILD_DIR
set -eu
build=$1
demo=$build/demo
rm -rf "$demo/mail" "$demo/state"
mkdir -p "$demo/mail"
KIGEN_DEMO_STOREPASS=changeit "$build/kigend" --config "$demo/kigen.yaml" 2>"$demo/kigend.log" &
pid=$!
# The holder of the phone-held certificate whose renewal window is open: 田中 太郎.
for _ in $(seq 100); do
    if grep -l "tanaka@example.co.jp" "$demo/mail"/*.eml >/dev/null 2>&1; then break; fi
    sleep 0.1
done
sleep 0.5
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
echo "$(ls "$demo/mail" | wc -l) messages in $demo/mail; the one to 田中 太郎:"
echo
mail=$(grep -l "tanaka@example.co.jp" "$demo/mail"/*.eml | head -n 1)
python3 - "$mail" <<'PY'
import email, email.policy, sys
with open(sys.argv[1], "rb") as f:
    m = email.message_from_binary_file(f, policy=email.policy.default)
for h in ("From", "To", "Cc", "Subject", "Date", "Message-ID", "X-Kigen-Event"):
    if m[h]:
        print("%s: %s" % (h, m[h]))
print()
print(m.get_content().rstrip())
PY
