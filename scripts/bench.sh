#!/usr/bin/env bash
# make bench: runs the benchmarks the issues name and prints one table.
# BENCH_IMAP_MESSAGES=N shrinks the IMAP mailbox (default 100000).
# IMPORT_BENCH_MESSAGES=N sets the messages of BenchmarkImport (default 2000).
# The IMAP rows are measured side by side with Dovecot in the same run
# (installed from Debian's packages when missing); the ratio column is
# ours / Dovecot, < 1 means bitmaskd is faster (or smaller).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Dovecot for the side-by-side IMAP rows. Without it the run goes on and
# the table says why Dovecot's figures are missing.
install_dovecot() {
	command -v dovecot >/dev/null || [ -x /usr/sbin/dovecot ] && return 0
	command -v apt-get >/dev/null || { echo "no apt-get to install dovecot-imapd with" >&2; return 1; }
	local sudo=""
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null || { echo "not root and no sudo to install dovecot-imapd" >&2; return 1; }
		sudo="sudo -n"
	fi
	echo "installing dovecot-imapd for the side-by-side IMAP benchmark" >&2
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get install -y -qq dovecot-imapd >/dev/null 2>&1 && return 0
	$sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq dovecot-imapd >/dev/null 2>&1
}
dovecot_note=""
if ! install_dovecot; then
	dovecot_note="dovecot: unavailable (could not install dovecot-imapd)"
fi
run() { go test -run '^$' -bench "$2" -benchtime 1x -timeout 30m "$1" | tee -a "$out" | grep -E '^(Benchmark|ok|FAIL)' >&2; }
run ./internal/daemon/ 'BenchmarkFreshDeviceSync10k|BenchmarkSignupLogin'
run ./internal/provider/mx/ 'BenchmarkMXAccept'
run ./internal/e2e/ 'BenchmarkProviderLoad'
run ./internal/e2e/ 'BenchmarkIncoming|BenchmarkMXToIdle|BenchmarkSend|BenchmarkIMAP100k|BenchmarkImport|BenchmarkExport|BenchmarkRelayDANE'

# One row per metric: what, measured, [Dovecot, ratio,] target.
metric() { awk -v b="$1" -v m="$2" '$1 ~ "^"b"(-[0-9]+)?$" { for (i = 3; i < NF; i++) if ($(i+1) == m) print $i }' "$out" | tail -1; }
line() { printf '| %-48s | %12s | %12s | %6s | %-18s |\n' "$@"; }
row() { line "$1" "${2:-n/a}" "" "" "$3"; }
# imap WHAT METRIC TARGET [rate]: bitmaskd's figure, Dovecot's, and the
# ratio ours / Dovecot in time or size (for a rate, Dovecot's / ours,
# which is the ratio of the time per message), so < 1 is better.
imap() {
	local ours theirs ratio=""
	ours=$(metric BenchmarkIMAP100k "$2")
	theirs=$(metric BenchmarkIMAP100k "dovecot-$2")
	if [ -n "$ours" ] && [ -n "$theirs" ]; then
		ratio=$(awk -v o="$ours" -v d="$theirs" -v rate="${4:-}" 'BEGIN {
			if (rate != "") { t = o; o = d; d = t }
			if (d > 0) printf "%.2f", o / d }')
	fi
	line "$1" "${ours:-n/a}" "${theirs:-n/a}" "$ratio" "$3"
}
unavailable=$(grep -o 'dovecot: unavailable (.*' "$out" | tail -1 || true)
echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%d)"
if [ -n "$dovecot_note" ] || [ -n "$unavailable" ]; then
	echo "${unavailable:-$dovecot_note}"
else
	echo "Dovecot $(grep -o 'dovecot [0-9][0-9.]*: wrote' "$out" | awk '{print $2}' | tr -d : | tail -1) (maildir) with the same messages and client; ratio = ours / Dovecot, < 1 is better"
fi
echo
line "what" "measured" "Dovecot" "ratio" "target"
printf '|%s|%s|%s|%s|%s|\n' "--------------------------------------------------" "--------------" "--------------" "--------" "--------------------"
row "sync of a fresh device, 10,000 x 2 KB (docs/s)" "$(metric BenchmarkFreshDeviceSync10k docs/s)" ">= 2,000"
row "signup wall time (s)" "$(metric BenchmarkSignupLogin signup-s)" "about 1 s or less"
row "login wall time (s)" "$(metric BenchmarkSignupLogin login-s)" "about 1 s or less"
row "MX accept, 10 KB, one connection (msgs/s)" "$(metric BenchmarkMXAccept msgs/s)" ""
row "MX accept to stored in INBOX, 10 KB (msgs/s)" "$(metric BenchmarkIncoming msgs/s)" ">= 200"
row "MX 250 to IDLE notification p50 (ms)" "$(metric BenchmarkMXToIdle p50-ms)" "< 1000"
row "MX 250 to IDLE notification p99 (ms)" "$(metric BenchmarkMXToIdle p99-ms)" "< 3000"
row "import from a Maildir, 10 KB (msgs/s)" "$(metric BenchmarkImport msgs/s)" ">= 2,000"
row "import from a Maildir (MB/s)" "$(metric BenchmarkImport MB/s)" "reported"
row "import: start to all at the provider (s)" "$(metric BenchmarkImport sync-s)" "reported"
row "export to a Maildir++ tree, 10 KB (msgs/s)" "$(metric BenchmarkExport msgs/s)" "reported"
row "export to a Maildir++ tree (MB/s)" "$(metric BenchmarkExport MB/s)" "reported"
row "export: Go heap in use at most (MB)" "$(metric BenchmarkExport heap-MB)" "bounded"
row "to a second provider over DANE, submit to its queue (msgs/s)" "$(metric BenchmarkRelayDANE msgs/s)" "reported"
row "local SMTP send, 1 recipient (msgs/s)" "$(metric BenchmarkSend/rcpts=1 msgs/s)" ">= 100"
row "local SMTP send, 10 recipients (msgs/s)" "$(metric BenchmarkSend/rcpts=10 msgs/s)" "reported"
row "end of DATA to 250, p50 (ms)" "$(metric BenchmarkSend/rcpts=1 p50-ms)" "< 20"
row "end of DATA to 250, p99 (ms)" "$(metric BenchmarkSend/rcpts=1 p99-ms)" "reported"
row "IMAP 100k: unlock by IMAP login (ms)" "$(metric BenchmarkIMAP100k unlock-ms)" "reported"
imap "IMAP 100k: SELECT (ms)" select-ms "< 200, <= Dovecot"
imap "IMAP 100k: UID FETCH 1:* (FLAGS), server (ms)" raw-fetch-flags-ms "< 1000"
imap "IMAP 100k: UID FETCH 1:* (ENVELOPE), server (ms)" raw-fetch-envelope-ms "< 1000"
imap "IMAP 100k: UID FETCH 1:* (BODYSTRUCTURE), server" raw-fetch-bodystructure-ms "< 1000"
imap "  the same, parsed by go-imap's client: FLAGS" fetch-flags-ms ""
imap "  ENVELOPE, parsed by go-imap's client (ms)" fetch-envelope-ms ""
imap "  BODYSTRUCTURE, parsed by go-imap's client" fetch-bodystructure-ms ""
imap "IMAP 100k: 1,000 FETCH BODY.PEEK[] (ms)" 1000-single-fetches-ms "< 500 in all"
imap "IMAP 100k: SEARCH BODY rare word (ms)" search-body-rare-ms "< 200"
imap "IMAP 100k: SEARCH BODY common word (ms)" search-body-common-ms "< 200"
imap "APPEND 10 KB, TCP_NODELAY (msgs/s)" append-nodelay-msgs/s ">= Dovecot" rate
imap "APPEND 10 KB, no TCP_NODELAY (msgs/s)" append-nagle-msgs/s ">= Dovecot" rate
imap "  server CPU per APPEND (ms)" append-cpu-ms "reported"
imap "IMAP 100k: daemon RSS (MB)" daemon-rss-MB "< 200"
imap "IMAP 100k: daemon anonymous memory (MB)" daemon-anon-MB ""
imap "IMAP 100k: daemon peak RSS (MB)" daemon-peak-rss-MB "reported"
# issue 15: the provider under a bounded load (BenchmarkProviderLoad,
# BENCH_LOAD_ACCOUNTS accounts, 1,000 by default) on each backend, and two
# instances on one PostgreSQL against one.
for backend in bolt postgres postgres-2-instances; do
	row "provider load, $backend: signups (/s)" "$(metric BenchmarkProviderLoad/$backend signups/s)" "reported"
	row "provider load, $backend: logins (/s)" "$(metric BenchmarkProviderLoad/$backend logins/s)" "reported"
	row "provider load, $backend: pushes (/s)" "$(metric BenchmarkProviderLoad/$backend pushes/s)" "reported"
	row "provider load, $backend: feed latency p50 (ms)" "$(metric BenchmarkProviderLoad/$backend feed-p50-ms)" "reported"
	row "provider load, $backend: feed latency p99 (ms)" "$(metric BenchmarkProviderLoad/$backend feed-p99-ms)" "reported"
	row "provider load, $backend: MX (msgs/s)" "$(metric BenchmarkProviderLoad/$backend mx-msgs/s)" "reported"
	row "provider load, $backend: RSS (MiB)" "$(metric BenchmarkProviderLoad/$backend rss-MiB)" "reported"
done
