#!/usr/bin/env bash
# Runs every fuzz target of the repository, one at a time, for FUZZTIME
# each (see docs/fuzzing.md):
#
#   make fuzz                           # 5s each, as CI does
#   make fuzz FUZZTIME=10m              # by hand, 10 minutes each
#   scripts/fuzz.sh ./internal/imapd    # only the targets of these packages
#   FUZZ=Session scripts/fuzz.sh        # only targets whose name matches
#
# The targets' temporary folders (a fresh store per input in some) go to
# FUZZTMPDIR, by default /dev/shm when there is one: on a disk, syncing
# them would take most of an input's time. Builds stay in GOTMPDIR.
#
# FUZZPARALLEL sets go test's -parallel (default: as many workers as
# CPUs). FUZZMINIMIZETIME bounds the minimizing of each new input
# (default 3s, not Go's 60s: a session target finds many new inputs in
# its first minutes and would spend them minimizing).
#
# A target that finds a failing input fails the run, after the other
# targets have run; the input is written to the target's corpus
# (PKG/testdata/fuzz/FuzzX/...), where `go test` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}
FUZZ=${FUZZ:-}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-3s}
if [ -z "${FUZZTMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	FUZZTMPDIR=/dev/shm
fi
if [ -n "${FUZZTMPDIR:-}" ]; then
	export GOTMPDIR=${GOTMPDIR:-${TMPDIR:-/tmp}}
	export TMPDIR=$FUZZTMPDIR
fi

# The test binary's own timeout must outlast the fuzzing: the time asked
# for plus ten minutes for the setup and the seed corpus. A FUZZTIME Go
# reads but this does not (1h30m, or a count such as 1000x) gets none.
timeout=0
case $FUZZTIME in
*[0-9]s) [[ ${FUZZTIME%s} =~ ^[0-9]+$ ]] && timeout=$((${FUZZTIME%s} + 600))s ;;
*[0-9]m) [[ ${FUZZTIME%m} =~ ^[0-9]+$ ]] && timeout=$((${FUZZTIME%m} * 60 + 600))s ;;
*[0-9]h) [[ ${FUZZTIME%h} =~ ^[0-9]+$ ]] && timeout=$((${FUZZTIME%h} * 3600 + 600))s ;;
esac

# Packages to look in: the arguments, or every package.
[ $# -gt 0 ] || set -- ./...
mapfile -t dirs < <($GO list -e -f '{{.Dir}}' "$@")

# Every `func FuzzX(` in the test files of those packages, as "dir name".
targets=()
for d in "${dirs[@]}"; do
	for f in "$d"/*_test.go; do
		[ -e "$f" ] || continue
		while read -r name; do
			if [ -z "$FUZZ" ] || [[ $name =~ $FUZZ ]]; then
				targets+=("$d $name")
			fi
		done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f")
	done
done
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

root=$(pwd)
parallel=()
[ -n "${FUZZPARALLEL:-}" ] && parallel=(-parallel "$FUZZPARALLEL")
echo "fuzz: ${#targets[@]} targets, $FUZZTIME each"
failed=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "${targets[@]}"; do
	dir=${t% *}
	name=${t#* }
	rel=.${dir#"$root"}
	echo "=== $rel $name"
	start=$SECONDS
	status=0
	(cd "$dir" && $GO test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" -timeout "$timeout" "${parallel[@]}" .) 2>&1 | tee "$log" || status=$?
	# Go 1.26's coordinator may report the end of -fuzztime itself as a
	# failure, a bare "context deadline exceeded" with no input written
	# (go.dev/issue/75804, fixed in Go 1.27): not a finding.
	if [ $status -ne 0 ] && ! grep -q 'Failing input written' "$log" &&
		awk -v n="--- FAIL: $name (" 'found { exit !($0 == "    context deadline exceeded") } index($0, n) == 1 { found = 1 } END { if (!found) exit 1 }' "$log"; then
		echo "fuzz: $name stopped by Go's fuzztime race (go.dev/issue/75804), no failing input: not a failure"
		status=0
	fi
	if grep -q 'no fuzz tests to fuzz' "$log"; then
		echo "fuzz: $rel has no fuzz target $name" >&2
		status=1
	fi
	if [ $status -ne 0 ]; then
		# go test names the input relative to the package.
		input=$(sed -n 's/^.*Failing input written to \(.*\)$/\1/p' "$log" | tail -n 1)
		if [ -n "$input" ]; then
			echo "fuzz: $name found a failing input, written to $rel/$input"
			echo "fuzz: replay it with: go test -run '$name/${input##*/}' $rel"
			failed+=("$rel $name: $rel/$input")
		else
			failed+=("$rel $name: failed (exit $status), see above")
		fi
	fi
	echo "--- $rel $name: $((SECONDS - start))s"
done

if [ ${#failed[@]} -gt 0 ]; then
	echo
	echo "fuzz: ${#failed[@]} of ${#targets[@]} targets failed:"
	printf '  %s\n' "${failed[@]}"
	exit 1
fi
echo "fuzz: all ${#targets[@]} targets passed"
