#!/usr/bin/env bash
# third_party/NAME is a module at a release, as the Go module proxy serves it
# (the packages syncer builds, without tests), plus third_party/NAME.patch
# (see third_party/NAME/SYNCER.md); go.mod points the module there with a
# `replace`. This script keeps each copy so:
#
#   bash third_party/patched.sh check [NAME...]  each copy equals upstream + patch
#                                                 (all of them by default; make test)
#   bash third_party/patched.sh apply NAME       rebuild the copy from upstream +
#                                                 patch, e.g. after changing its version
#   bash third_party/patched.sh diff NAME        rewrite the patch from the copy,
#                                                 after editing the copy's code
set -euo pipefail

NAMES="go-fuse ftpserverlib"

# module NAME: sets MODULE, VERSION, DIRS (the module's directories syncer
# builds; "." is the root) and FILES (top-level files kept besides).
module() {
	case $1 in
	go-fuse)
		MODULE=github.com/hanwen/go-fuse/v2
		VERSION=v2.12.1
		DIRS="fs fuse splice internal internal/fallocate internal/ioctl internal/openat internal/renameat internal/utimens internal/xattr"
		FILES="LICENSE go.mod go.sum"
		;;
	ftpserverlib)
		MODULE=github.com/fclairamb/ftpserverlib
		VERSION=v0.32.3
		DIRS="."
		FILES="license.txt go.mod go.sum"
		;;
	*) die "unknown module $1 (known: $NAMES)" ;;
	esac
}

here=$(cd "$(dirname "$0")" && pwd)
GO=${GO:-go}

die() { echo "patched.sh: $*" >&2; exit 1; }

# upstream NAME DEST: the kept files of NAME's release, unpatched, into DEST.
upstream() {
	local dest=$2 src
	module "$1"
	src=$(cd "$(mktemp -d)" && GOFLAGS= GOWORK=off "$GO" mod download -json "$MODULE@$VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -n "$src" ] && [ -d "$src" ] || die "go mod download $MODULE@$VERSION gave no directory"
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

# patched NAME DEST: upstream plus the patch.
patched() {
	upstream "$1" "$2"
	(cd "$2" && git apply --allow-empty --whitespace=nowarn "$here/$1.patch") || die "$1.patch does not apply to $MODULE $VERSION"
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmd=${1:-check}
[ $# -gt 0 ] && shift
case $cmd in
check)
	[ $# -gt 0 ] || set -- $NAMES
	for name in "$@"; do
		patched "$name" "$tmp/$name"
		if ! out=$(diff -r -x SYNCER.md "$tmp/$name" "$here/$name"); then
			echo "$out" | head -40 >&2
			die "third_party/$name is not $MODULE $VERSION + $name.patch (edited the copy? run: bash third_party/patched.sh diff $name)"
		fi
		echo "third_party/$name = $MODULE $VERSION + $name.patch"
	done
	;;
apply)
	[ $# -eq 1 ] || die "usage: bash third_party/patched.sh apply NAME"
	patched "$1" "$tmp/want"
	mkdir -p "$here/$1"
	find "$here/$1" -mindepth 1 -maxdepth 1 ! -name SYNCER.md -exec rm -rf {} +
	cp -r "$tmp/want/." "$here/$1/"
	echo "third_party/$1 rebuilt from $MODULE $VERSION + $1.patch"
	;;
diff)
	[ $# -eq 1 ] || die "usage: bash third_party/patched.sh diff NAME"
	upstream "$1" "$tmp/a"
	mkdir -p "$tmp/b"
	(cd "$here/$1" && tar cf - --exclude=SYNCER.md .) | (cd "$tmp/b" && tar xf -)
	(cd "$tmp" && diff -ruN a b | sed -E 's/^((---|\+\+\+) [^\t]*)\t.*/\1/' >"$here/$1.patch") || true
	echo "$1.patch: $(grep -c '^diff ' "$here/$1.patch") files differ from $MODULE $VERSION"
	;;
*)
	die "usage: bash third_party/patched.sh check [NAME...] | apply NAME | diff NAME (NAME: $NAMES)"
	;;
esac
