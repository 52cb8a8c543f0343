#!/usr/bin/env bash
# End to end with real mail clients: swaks sends through bitmaskd's SMTP
# to the other demo account, mbsync syncs that account to a Maildir, a
# message is flagged and another deleted there, mbsync syncs back, and
# the changes are seen over IMAP (curl) on the account's second device.
set -euo pipefail
cd "$(dirname "$0")/.."
need() { command -v "$1" >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get install -y -qq isync swaks curl >/dev/null; }; }
need mbsync; need swaks; need curl
make -s build

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

waitfor() { # file pattern
	for _ in $(seq 1 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	echo "timed out waiting for '$2' in $1"; cat "$1"; exit 1
}

# The demo: provider, MX, submission, bitmaskd with alice and bob.
bin/bitmask-demo -data "$work/demo" -provider 127.0.0.1:0 -mx 127.0.0.1:0 -submission 127.0.0.1:0 \
	-control 127.0.0.1:0 -imap 127.0.0.1:0 -smtp 127.0.0.1:0 >"$work/demo.out" 2>"$work/demo.err" &
pids+=($!)
waitfor "$work/demo.out" "Control API:"
api=$(sed -n 's/^Bitmask demo: provider .* at \(https:[^ ]*\) .*/\1/p' "$work/demo.out")
fpr=$(sed -n 's/^Provider CA fingerprint: //p' "$work/demo.out")
imap=$(sed -n 's/^  IMAP server  \([^ ]*\) .*/\1/p' "$work/demo.out")
smtp=$(sed -n 's/^  SMTP server  \([^ ]*\) .*/\1/p' "$work/demo.out")
ctl=$(sed -n 's|^Control API: http://\([^ ]*\) .*|\1|p' "$work/demo.out")
ctlA=(bin/bitmaskctl --data "$work/demo/bitmaskd" --control "$ctl")
tokA=$("${ctlA[@]}" --json mail config alice@bitmask.test | sed -n 's/.*"password": "\(.*\)".*/\1/p')
tokB=$("${ctlA[@]}" --json mail config bob@bitmask.test | sed -n 's/.*"password": "\(.*\)".*/\1/p')
pwB=$(sed -n '/bob@/{n;s/.*"password": "\(.*\)".*/\1/p}' "$work/demo/demo-accounts.json")
echo "demo up: IMAP $imap, SMTP $smtp"

# 1. swaks sends two messages from alice to bob through bitmaskd's SMTP.
for subj in "first from swaks" "second from swaks"; do
	swaks --silent 1 --server "${smtp%:*}" --port "${smtp#*:}" --auth PLAIN \
		--auth-user alice@bitmask.test --auth-password "$tokA" \
		--from alice@bitmask.test --to bob@bitmask.test \
		--header "Subject: $subj" --body "hello bob, $subj"
done

# 2. mbsync bob's INBOX to a Maildir.
mkdir -p "$work/maildir"
cat >"$work/mbsyncrc" <<RC
IMAPAccount bob
Host ${imap%:*}
Port ${imap#*:}
User bob@bitmask.test
Pass $tokB
SSLType STARTTLS
CertificateFile $work/demo/bitmaskd/localhost.crt
AuthMechs LOGIN

IMAPStore bob-remote
Account bob

MaildirStore bob-local
Path $work/maildir/
Inbox $work/maildir/INBOX

Channel bob
Far :bob-remote:
Near :bob-local:
Patterns INBOX
Create Near
Expunge Both
SyncState *
RC
mb() { mbsync -q -c "$work/mbsyncrc" bob; }
for _ in $(seq 1 100); do
	mb
	n=$(ls "$work/maildir/INBOX/cur" "$work/maildir/INBOX/new" 2>/dev/null | grep -c ',U=' || true)
	[ "$n" -ge 2 ] && break
	sleep 0.2
done
[ "$n" -ge 2 ] || { echo "mbsync found $n messages, want 2"; exit 1; }
echo "mbsync: 2 messages in bob's Maildir"

# 3. Flag the first, delete the second, locally; sync back.
first=$(find "$work/maildir/INBOX" -type f -path '*/[cn][ue][rw]/*' -exec grep -l "first from swaks" {} + | head -1)
second=$(find "$work/maildir/INBOX" -type f -path '*/[cn][ue][rw]/*' -exec grep -l "second from swaks" {} + | head -1)
mv "$first" "$work/maildir/INBOX/cur/$(basename "${first%%:2,*}"):2,FS"
mv "$second" "$work/maildir/INBOX/cur/$(basename "${second%%:2,*}"):2,ST"
mb

# 4. Bob's second device: another bitmaskd, logged in to the same account.
bin/bitmaskd -data "$work/dev2" -control 127.0.0.1:0 -imap 127.0.0.1:0 -smtp "" >"$work/dev2.out" 2>"$work/dev2.err" &
pids+=($!)
waitfor "$work/dev2.out" "IMAP on"
ctl2=$(sed -n 's|.*control API on http://\([^ ]*\) .*|\1|p' "$work/dev2.out")
imap2=$(sed -n 's/.*IMAP on \([^,]*\),.*/\1/p' "$work/dev2.out")
printf '%s\n' "$pwB" >"$work/pwB"
ctlB=(bin/bitmaskctl --data "$work/dev2" --control "$ctl2")
"${ctlB[@]}" user login bob@bitmask.test --provider "$api" --fingerprint "$fpr" --password-file "$work/pwB"
tok2=$("${ctlB[@]}" --json mail config bob@bitmask.test | sed -n 's/.*"password": "\(.*\)".*/\1/p')

ok=
for _ in $(seq 1 100); do
	out=$(curl -s --url "imap://${imap2}/INBOX" --user "bob@bitmask.test:$tok2" -X 'FETCH 1:* (UID FLAGS)' || true)
	if [ "$(echo "$out" | grep -c FETCH)" = 1 ] && echo "$out" | grep -q 'Flagged'; then
		uid=$(echo "$out" | sed -n 's/.*UID \([0-9]*\).*/\1/p')
		subj=$(curl -s --url "imap://${imap2}/INBOX;UID=$uid/;SECTION=HEADER.FIELDS%20(SUBJECT)" --user "bob@bitmask.test:$tok2" || true)
		if echo "$subj" | grep -q 'first from swaks'; then ok=1; break; fi
	fi
	sleep 0.2
done
[ -n "$ok" ] || { echo "device 2 sees:"; echo "$out"; exit 1; }
echo "device 2 over IMAP: the first message flagged, the second deleted"

# 2. Between providers (issue 14): two leapd with DNSSEC-signed zones that
# the system's unbound validates, MXs on port 25 of their own loopback
# addresses; the first message crosses encrypted over DANE-validated TLS,
# and a wrong TLSA record, a STARTTLS-stripping proxy and a forged MX
# answer each defer without delivery (internal/e2e/between_providers_test.go).
command -v unbound >/dev/null || [ -x /usr/sbin/unbound ] || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get install -y -qq unbound >/dev/null; }
BITMASK_REQUIRE_PEERS=1 go test -count=1 -run '^TestBetweenProvidersDANE$' -v ./internal/e2e/ >"$work/between.out" 2>&1 || { cat "$work/between.out"; exit 1; }
grep -E '^(=== RUN|---|    between)' "$work/between.out" | grep -v WARN
echo "e2e: 2 passed, 0 failed"
