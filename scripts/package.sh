#!/usr/bin/env bash
# Builds the Debian package dist/bitmask_VERSION_ARCH.deb from the commit
# at HEAD (make package), reproducibly: a clean clone of HEAD, binaries
# built with -trimpath and no build id, man pages gzipped without a name
# or time, and every file's time set to the commit's (SOURCE_DATE_EPOCH).
# Uncommitted changes are not packaged; PACKAGE_TREE=worktree packages
# the working tree as it is instead (its bitmaskd --version then ends in
# +dirty if the tree has changes).
#
#   scripts/package.sh [OUTDIR]   build into OUTDIR (default dist, whose
#                                 older packages it removes)
#   scripts/package.sh --check    build twice, from two clones in two
#                                 directories, into dist/ and a scratch
#                                 directory; fail unless the two .debs
#                                 have one sha256 and the packaged bitmaskd
#                                 says the commit (make package-check)
#
# See docs/packaging.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
GO=${GO:-go}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# build SRC OUTDIR: packages the tree SRC into OUTDIR and prints the
# .deb's path.
build() {
	local src=$1 out=$2 stage
	stage=$(mktemp -d "$scratch/stage.XXXXXX")
	mkdir -p "$out"
	local sde version arch
	sde=$(git -C "$src" log -1 --format=%ct)
	# Debian version: the commit's exact tag (v1.2.3 -> 1.2.3), else
	# 0.0~git followed by the commit's UTC time and short hash, which
	# sorts by time.
	if tag=$(git -C "$src" describe --tags --exact-match 2>/dev/null); then
		version=${tag#v}
	else
		version=0.0~git$(TZ=UTC date -d "@$sde" +%Y%m%d%H%M%S).$(git -C "$src" rev-parse --short=12 HEAD)
	fi
	arch=$(cd "$src" && $GO env GOARCH)

	# The binaries: static (no cgo), with the commit recorded
	# (-buildvcs=true wins over a GOFLAGS=-buildvcs=false), no paths of
	# this machine, no build id, no symbol table or DWARF (a third of the
	# size; a panic's stack trace still names functions and lines).
	(cd "$src" && CGO_ENABLED=0 $GO build -trimpath -buildvcs=true -ldflags="-s -w -buildid=" \
		-o "$stage/" ./cmd/bitmaskd ./cmd/bitmaskctl)

	# The man pages, gzipped with no file name or time in the header.
	for m in bitmaskd bitmaskctl; do
		gzip -9 -n <"$src/packaging/man/$m.1" >"$stage/$m.1.gz"
	done

	# The systemd user unit, the XDG autostart entry and the icon, as
	# committed; the unit and the entry name the installed binary.
	cp "$src/internal/autostart/files/bitmaskd.service" "$src/internal/autostart/files/bitmaskd.desktop" "$stage/"
	mkdir -p "$stage/icons/scalable/apps"
	cp "$src/internal/tray/icons/bitmask.svg" "$stage/icons/scalable/apps/"
	for f in "$src"/internal/tray/icons/bitmask-*.png; do
		n=${f##*/bitmask-}
		n=${n%.png}
		mkdir -p "$stage/icons/${n}x${n}/apps"
		cp "$f" "$stage/icons/${n}x${n}/apps/bitmask.png"
	done

	# The copyright file: ours, then every Go module linked in with its
	# license files (from the module cache, which holds each version's
	# files unchanged), sorted so the file is the same each time.
	{
		cat "$src/packaging/copyright"
		printf '\n== Go standard library %s ==\n\n' "$($GO env GOVERSION)"
		cat "$($GO env GOROOT)/LICENSE"
		(cd "$src" && CGO_ENABLED=0 $GO list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' \
			./cmd/bitmaskd ./cmd/bitmaskctl) | LC_ALL=C sort -u |
			while read -r path ver dir; do
				printf '\n== %s %s ==\n' "$path" "$ver"
				found=
				while IFS= read -r f; do
					found=1
					printf '\n-- %s --\n\n' "$(basename "$f")"
					cat "$f"
				done < <(find "$dir" -maxdepth 1 -type f \( -iname 'licen[cs]e*' -o -iname 'copying*' -o -iname 'notice*' -o -iname 'unlicense*' \) | LC_ALL=C sort)
				[ -n "$found" ] || printf '\n(the module has no license file)\n'
			done
	} >"$stage/copyright"

	chmod 0755 "$stage/bitmaskd" "$stage/bitmaskctl"
	chmod 0644 "$stage"/*.gz "$stage"/bitmaskd.service "$stage"/bitmaskd.desktop "$stage"/copyright "$stage"/icons/*/apps/*
	local deb="$out/bitmask_${version}_${arch}.deb"
	rm -f "$deb"
	(cd "$src" && SOURCE_DATE_EPOCH=$sde STAGE=$stage VERSION=$version ARCH=$arch \
		$GO tool nfpm package -f packaging/nfpm.yaml -p deb -t "$deb" >/dev/null)
	echo "$deb"
}

# The commit to package: HEAD now, whatever is committed meanwhile.
rev=$(git rev-parse HEAD)

# clone DIR: a clean clone of the commit (its objects shared with this
# repository, so it costs little).
clone() {
	git clone -q --shared --no-checkout "$root" "$1"
	git -C "$1" checkout -q --detach "$rev"
}

source_tree() { # DIR: the tree to package
	if [ "${PACKAGE_TREE:-}" = worktree ]; then
		echo "$root"
	else
		clone "$1"
		echo "$1"
	fi
}

# dist/ keeps the newest package only, so ./dist/bitmask_*.deb names one.
case ${1:-} in "" | --check) rm -f "$root"/dist/bitmask_*.deb ;; esac

if [ "${1:-}" != --check ]; then
	out=${1:-dist}
	case $out in /*) ;; *) out=$root/$out ;; esac
	start=$SECONDS
	deb=$(build "$(source_tree "$scratch/src")" "$out")
	echo "package: ${deb#"$root"/} ($(du -k "$deb" | cut -f1) KiB, $((SECONDS - start)) s)"
	exit 0
fi

start=$SECONDS
a=$(build "$(source_tree "$scratch/a/src")" "$root/dist")
b=$(build "$(source_tree "$scratch/b/checkout/src")" "$scratch/b/out")
suma=$(sha256sum <"$a" | cut -d' ' -f1)
sumb=$(sha256sum <"$b" | cut -d' ' -f1)
echo "package-check: ${a#"$root"/} ($(du -k "$a" | cut -f1) KiB) built twice in $((SECONDS - start)) s"
echo "package-check: sha256 $suma"
echo "package-check: sha256 $sumb"
if [ "$suma" != "$sumb" ]; then
	echo "package-check: the two builds differ" >&2
	exit 1
fi

# What the package holds, and that its bitmaskd names the commit.
dpkg-deb --info "$a"
dpkg-deb --contents "$a"
dpkg-deb -x "$a" "$scratch/root"
[ "${PACKAGE_TREE:-}" != worktree ] || [ -z "$(git status --porcelain)" ] || rev=$rev+dirty
got=$("$scratch/root/usr/bin/bitmaskd" --version)
if [ "$got" != "bitmaskd $rev" ]; then
	echo "package-check: bitmaskd --version says \"$got\", want \"bitmaskd $rev\"" >&2
	exit 1
fi
echo "package-check: $got"
