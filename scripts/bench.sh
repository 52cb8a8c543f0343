#!/usr/bin/env bash
# make bench: runs the benchmarks the issues name and prints one table.
# BENCH_IMAP_MESSAGES=N shrinks the IMAP mailbox (default 100000).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
run() { go test -run '^$' -bench "$2" -benchtime 1x -timeout 30m "$1" | tee -a "$out" | grep -E '^(Benchmark|ok|FAIL)' >&2; }
run ./internal/daemon/ 'BenchmarkFreshDeviceSync10k|BenchmarkSignupLogin'
run ./internal/provider/mx/ 'BenchmarkMXAccept'
run ./internal/e2e/ 'BenchmarkIncoming|BenchmarkMXToIdle|BenchmarkSend|BenchmarkIMAP100k'

# One row per metric: benchmark, metric, value.
metric() { awk -v b="$1" -v m="$2" '$1 ~ "^"b"(-[0-9]+)?$" { for (i = 3; i < NF; i++) if ($(i+1) == m) print $i }' "$out" | tail -1; }
row() { printf '| %-44s | %12s | %-22s |\n' "$1" "${2:-n/a}" "$3"; }
echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%d)"
echo
printf '| %-44s | %12s | %-22s |\n' "what" "measured" "target"
printf '|%s|%s|%s|\n' "----------------------------------------------" "--------------" "------------------------"
row "sync of a fresh device, 10,000 x 2 KB (docs/s)" "$(metric BenchmarkFreshDeviceSync10k docs/s)" ">= 2,000"
row "signup wall time (s)" "$(metric BenchmarkSignupLogin signup-s)" "about 1 s or less"
row "login wall time (s)" "$(metric BenchmarkSignupLogin login-s)" "about 1 s or less"
row "MX accept, 10 KB, one connection (msgs/s)" "$(metric BenchmarkMXAccept msgs/s)" ""
row "MX accept to stored in INBOX, 10 KB (msgs/s)" "$(metric BenchmarkIncoming msgs/s)" ">= 200"
row "MX 250 to IDLE notification p50 (ms)" "$(metric BenchmarkMXToIdle p50-ms)" "< 1000"
row "MX 250 to IDLE notification p99 (ms)" "$(metric BenchmarkMXToIdle p99-ms)" "< 3000"
row "local SMTP send, 1 recipient (msgs/s)" "$(metric BenchmarkSend/rcpts=1 msgs/s)" ">= 100"
row "local SMTP send, 10 recipients (msgs/s)" "$(metric BenchmarkSend/rcpts=10 msgs/s)" "reported"
row "end of DATA to 250, p50 (ms)" "$(metric BenchmarkSend/rcpts=1 p50-ms)" "< 20"
row "end of DATA to 250, p99 (ms)" "$(metric BenchmarkSend/rcpts=1 p99-ms)" "reported"
row "IMAP 100k: unlock by IMAP login (ms)" "$(metric BenchmarkIMAP100k unlock-ms)" "reported"
row "IMAP 100k: SELECT (ms)" "$(metric BenchmarkIMAP100k select-ms)" "< 200"
row "IMAP 100k: UID FETCH 1:* (FLAGS), server (ms)" "$(metric BenchmarkIMAP100k raw-fetch-flags-ms)" "< 1000"
row "IMAP 100k: UID FETCH 1:* (ENVELOPE), server (ms)" "$(metric BenchmarkIMAP100k raw-fetch-envelope-ms)" "< 1000"
row "IMAP 100k: UID FETCH 1:* (BODYSTRUCTURE), server" "$(metric BenchmarkIMAP100k raw-fetch-bodystructure-ms)" "< 1000"
row "  the same, parsed by go-imap's client: FLAGS" "$(metric BenchmarkIMAP100k fetch-flags-ms)" ""
row "  ENVELOPE, parsed by go-imap's client (ms)" "$(metric BenchmarkIMAP100k fetch-envelope-ms)" ""
row "  BODYSTRUCTURE, parsed by go-imap's client" "$(metric BenchmarkIMAP100k fetch-bodystructure-ms)" ""
row "IMAP 100k: 1,000 FETCH BODY.PEEK[] (ms)" "$(metric BenchmarkIMAP100k 1000-single-fetches-ms)" "< 500 in all"
row "IMAP 100k: SEARCH BODY (ms)" "$(metric BenchmarkIMAP100k search-body-ms)" "reported"
row "IMAP 100k: daemon RSS (MB)" "$(metric BenchmarkIMAP100k daemon-rss-MB)" "< 250"
row "IMAP 100k: daemon anonymous memory (MB)" "$(metric BenchmarkIMAP100k daemon-anon-MB)" ""
row "IMAP 100k: daemon peak RSS (MB)" "$(metric BenchmarkIMAP100k daemon-peak-rss-MB)" "reported"
