#!/usr/bin/env bash
# third_party/go-fuse is go-fuse $VERSION as the Go module proxy serves it
# (the packages syncer builds, without tests) plus third_party/go-fuse.patch
# (see third_party/go-fuse/SYNCER.md). This script keeps it so:
#
#   bash third_party/go-fuse.sh check   the copy equals upstream + patch (make test)
#   bash third_party/go-fuse.sh apply   rebuild the copy from upstream + patch,
#                                       e.g. after changing VERSION
#   bash third_party/go-fuse.sh diff    rewrite the patch from the copy, after
#                                       editing the copy's code
set -euo pipefail

VERSION=v2.12.1
# The directories of the module that syncer builds, and its top-level files.
DIRS="fs fuse splice internal internal/fallocate internal/ioctl internal/openat internal/renameat internal/utimens internal/xattr"
FILES="LICENSE go.mod go.sum"

here=$(cd "$(dirname "$0")" && pwd)
copy=$here/go-fuse
patch=$here/go-fuse.patch
GO=${GO:-go}

die() { echo "go-fuse.sh: $*" >&2; exit 1; }

# upstream DEST: the kept files of go-fuse $VERSION, unpatched, into DEST.
upstream() {
	local dest=$1 src
	src=$(cd "$(mktemp -d)" && GOFLAGS= GOWORK=off "$GO" mod download -json "github.com/hanwen/go-fuse/v2@$VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$src" ] && [ -d "$src" ] || die "go mod download github.com/hanwen/go-fuse/v2@$VERSION gave no directory"
	for d in $DIRS; do
		mkdir -p "$dest/$d"
		for f in "$src/$d"/*.go; do
			case $f in *_test.go) continue ;; esac
			cp "$f" "$dest/$d/"
		done
	done
	for f in $FILES; do cp "$src/$f" "$dest/"; done
	chmod -R u+w "$dest"
}

# patched DEST: upstream plus the patch.
patched() {
	upstream "$1"
	(cd "$1" && git apply --whitespace=nowarn "$patch") || die "go-fuse.patch does not apply to go-fuse $VERSION"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

case ${1:-check} in
check)
	patched "$tmp/want"
	if ! out=$(diff -r -x SYNCER.md "$tmp/want" "$copy"); then
		echo "$out" | head -40 >&2
		die "third_party/go-fuse is not go-fuse $VERSION + go-fuse.patch (edited the copy? run: bash third_party/go-fuse.sh diff)"
	fi
	echo "third_party/go-fuse = go-fuse $VERSION + go-fuse.patch"
	;;
apply)
	patched "$tmp/want"
	find "$copy" -mindepth 1 -maxdepth 1 ! -name SYNCER.md -exec rm -rf {} +
	cp -r "$tmp/want/." "$copy/"
	echo "third_party/go-fuse rebuilt from go-fuse $VERSION + go-fuse.patch"
	;;
diff)
	upstream "$tmp/a"
	mkdir -p "$tmp/b"
	(cd "$copy" && tar cf - --exclude=SYNCER.md .) | (cd "$tmp/b" && tar xf -)
	(cd "$tmp" && diff -ruN a b | sed -E 's/^((---|\+\+\+) [^\t]*)\t.*/\1/' >"$patch") || true
	echo "go-fuse.patch: $(grep -c '^diff ' "$patch") files differ from go-fuse $VERSION"
	;;
*)
	die "usage: bash third_party/go-fuse.sh [check|apply|diff]"
	;;
esac
