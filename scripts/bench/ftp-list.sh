#!/usr/bin/env bash
# FTP listings of a large directory: CLIENTS parallel curl LISTs (each read at
# RATE, so that all are in flight together) of a directory of ENTRIES empty
# files, against `syncer serve`. Prints the server's resident memory before
# the listings and its peak (VmHWM: the peak since start, which includes the
# index's start-up scan of the archive) and checks every listing is complete.
# Measures; asserts nothing about memory.
#
# BASE_BIN=path/to/older/syncer runs that binary the same way first: before
# and after a change, side by side.
#
# Usage: scripts/bench/ftp-list.sh                      (300,000 entries, 10 clients)
#        ENTRIES=100000 CLIENTS=4 scripts/bench/ftp-list.sh
#        BASE_BIN=/tmp/syncer.old scripts/bench/ftp-list.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
entries=${ENTRIES:-300000}
clients=${CLIENTS:-10}
rate=${RATE:-4M}
bin=${SYNCER_BIN:-bin/syncer}
[ -x "$bin" ] || make build >/dev/null
work=$(mktemp -d "${TMPDIR:-/dev/shm}/ftp-list.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/arch/node1/big"
python3 - "$work/arch/node1/big" "$entries" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.close(os.open(f"{d}/app-{i:07d}.log", os.O_CREAT | os.O_WRONLY, 0o644))
PY
password=pw-$RANDOM$RANDOM

run() {
	local bin=$1 state pid port rss0 hwm lines start end
	state=$(mktemp -d "$work/state.XXXXXX")
	printf '%s\n' "$password" | "$bin" user add node1 --password-stdin --state "$state" >/dev/null
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	"$bin" serve --root "$work/arch" --state "$state" --ftp "127.0.0.1:$port" --http "" 2>"$state/serve.log" &
	pid=$!
	for _ in $(seq 100); do curl -s -o /dev/null "ftp://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.2; done
	rss0=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
	printf 'machine 127.0.0.1 login node1 password %s\n' "$password" >"$state/netrc"
	start=$(date +%s.%N)
	local pids=()
	for i in $(seq "$clients"); do
		curl -sS --netrc-file "$state/netrc" --limit-rate "$rate" "ftp://127.0.0.1:$port/big/" -o "$state/list.$i" &
		pids+=($!)
	done
	wait "${pids[@]}"
	end=$(date +%s.%N)
	hwm=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
	lines=$(cat "$state"/list.* | wc -l)
	kill "$pid"; wait "$pid" 2>/dev/null || true
	[ "$lines" -eq $((entries * clients)) ] || { echo "$bin: $lines lines listed, want $((entries * clients))" >&2; exit 1; }
	printf '%s: %d LISTs of %d entries: RSS %d MiB before, peak %d MiB; %.1f s\n' \
		"$bin" "$clients" "$entries" $((rss0 / 1024)) $((hwm / 1024)) "$(echo "$end - $start" | bc)"
}

[ -n "${BASE_BIN:-}" ] && run "$BASE_BIN"
run "$bin"
