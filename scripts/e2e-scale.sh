#!/usr/bin/env bash
# make e2e-scale: several leapd instances on PostgreSQL and S3, end to
# end (docs/storage.md, "Several instances"). Installs what is missing:
# PostgreSQL from Debian's packages (the tests start their own server in
# a temporary directory, as the postgres user when run as root) and
# versitygw, the S3-compatible server (built with go install into the
# cache directory where internal/testenv/s3 finds it). Then runs, with
# BITMASK_REQUIRE_PEERS=1 so that a missing peer fails instead of
# skipping:
#   - e2e TestCluster: two instances of one provider on one PostgreSQL
#     and one S3 bucket: signup, login on two devices (one per instance),
#     mail in through one instance's MX, a change pushed through one
#     waking the device on the other, a send through one instance's
#     submission relayed once with both queues running;
#   - the storage conformance suite on PostgreSQL + S3 and the
#     cluster tests of httpapi and submission.
# E2E_SCALE_RUN narrows the e2e tests (a go test -run pattern).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

have_postgres() {
	command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/postgres" ] && return 0
	compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null
}

if ! have_postgres; then
	command -v apt-get >/dev/null || { echo "e2e-scale: PostgreSQL is missing and there is no apt-get to install it" >&2; exit 1; }
	sudo=""
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null || { echo "e2e-scale: not root and no sudo to install postgresql" >&2; exit 1; }
		sudo=sudo
	fi
	echo "e2e-scale: installing postgresql"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq postgresql >/dev/null
	# The tests run their own server; the package's cluster may stay
	# stopped.
	have_postgres || { echo "e2e-scale: postgresql installed but no postgres binary found" >&2; exit 1; }
fi

# versitygw, where internal/testenv/s3 looks for it (BITMASK_VERSITYGW,
# PATH, then its cache directory).
vgw_version=v1.8.0
vgw_dir="${XDG_CACHE_HOME:-$HOME/.cache}/bitmask-test/versitygw-$vgw_version"
if [ -z "${BITMASK_VERSITYGW:-}" ] && ! command -v versitygw >/dev/null && [ ! -x "$vgw_dir/versitygw" ]; then
	echo "e2e-scale: building versitygw $vgw_version"
	mkdir -p "$vgw_dir"
	GOBIN="$vgw_dir" $GO install "github.com/versity/versitygw/cmd/versitygw@$vgw_version"
fi

# --prepare: only make sure the peers are there (CI does it before
# make test, whose PostgreSQL and S3 tests then run too).
if [ "${1:-}" = "--prepare" ]; then
	echo "e2e-scale: PostgreSQL and versitygw are ready"
	exit 0
fi

export BITMASK_REQUIRE_PEERS=1
run=${E2E_SCALE_RUN:-'^TestCluster$'}
# E2E_SCALE_ONLY_E2E=1 skips the storage and API tests on the peers
# (CI's make test has just run them) and runs the end-to-end part.
if [ -z "${E2E_SCALE_ONLY_E2E:-}" ]; then
	$GO test -count=1 -timeout 20m -run 'Postgres|S3' ./internal/provider/storage/
	$GO test -count=1 -timeout 20m -run 'AcrossInstances|TwoQueuesSendOnce' ./internal/provider/httpapi/ ./internal/provider/submission/
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
$GO test -count=1 -timeout 30m -run "$run" -v ./internal/e2e/ >"$log" 2>&1 || status=$?
grep -E '^(=== RUN|\s*--- |PASS|FAIL|ok)' "$log" || true
if [ "$status" != 0 ]; then
	tail -n 200 "$log"
	exit "$status"
fi
echo "e2e-scale: OK"
