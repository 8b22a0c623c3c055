#!/usr/bin/env bash
# Runs every fuzz target of the module for a bounded time each.
#   scripts/faults/fuzz.sh            # FUZZTIME=10s per target (CI)
#   FUZZTIME=5m scripts/faults/fuzz.sh
# A failing input is written under the package's testdata/fuzz/ by go test;
# commit it with the fix so that `go test` replays it for ever after.
set -euo pipefail
cd "$(dirname "$0")/../.."
FUZZTIME=${FUZZTIME:-10s}
GO=${GO:-go}
targets=(
	"./ftpfs FuzzResolvePath"     # FTP path sanitising and confinement
	"./ftpfs FuzzLoadUsers"       # users file parser
	"./httpview FuzzArchivePath"  # HTTP path parameters
	"./store FuzzFileKey"         # manifest key encoding
	"./store FuzzEntry"           # manifest entry encoding
	"./store FuzzIndexKey"        # historian index key encoding
	"./syncer FuzzGlob"           # include/exclude globs
	"./syncer FuzzSuffixFastPath" # the **/*X fast path
)
fail=0
for t in "${targets[@]}"; do
	set -- $t
	echo "== fuzz $1 $2 for $FUZZTIME"
	# The outer timeout bounds a fuzzer that stops making progress: CI must
	# end by itself.
	if ! timeout --kill-after=10 600 $GO test -run '^$' -fuzz "^$2\$" -fuzztime "$FUZZTIME" "$1"; then
		echo "FAIL: $1 $2"
		fail=1
	fi
done
exit $fail
