#!/usr/bin/env bash
# /raw download throughput: the same client (curl) fetches the same file from
# `syncer serve --http` on loopback and with file:// from the disk,
# alternating, several rounds (page cache warm for both); prints medians
# and the ratio raw/file (target: at least 0.8). Also times listing a
# directory of 10,000 files through the JSON API.
#
# Usage: scripts/bench/web.sh [SIZE_MIB] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-${SIZE_MIB:-1024}}
rounds=${2:-${ROUNDS:-5}}
bin=${SYNCER_BIN:-bin/syncer}
[ -x "$bin" ] || go build -o "$bin" ./cmd/syncer
command -v curl >/dev/null || { echo "curl is not installed" >&2; exit 2; }

work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$work/root/node1/big" "$work/state"
# A log-like file of SIZE_MIB.
/usr/bin/python3 - "$work/root/node1/app.log" "$size_mib" <<'PY'
import sys
path, mib = sys.argv[1], int(sys.argv[2])
line = b"2026-11-24T10:00:00Z node1 INFO request served in 12ms path=/api/v1/items status=200\n"
block = line * ((1 << 20) // len(line) + 1)
block = block[: 1 << 20]
with open(path, "wb") as f:
    for _ in range(mib):
        f.write(block)
PY
for i in $(seq -w 0 9999); do : >"$work/root/node1/big/part-$i.log"; done

port=$(free_port)
"$bin" serve --root "$work/root" --state "$work/state" --ftp "127.0.0.1:$(free_port)" --http "127.0.0.1:$port" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 1 600); do
  [ "$(curl -s "http://127.0.0.1:$port/healthz" || true)" = ok ] && break
  sleep 0.1
done
[ "$(curl -s "http://127.0.0.1:$port/healthz")" = ok ] || { echo "serve did not come up:" >&2; cat "$work/serve.log" >&2; exit 1; }

cat "$work/root/node1/app.log" >/dev/null # warm the page cache
want=$((size_mib << 20))
speed() {
  local out
  out=$(curl -sf -o /dev/null -w '%{size_download} %{speed_download}' "$1")
  [ "${out% *}" = "$want" ] || { echo "$1: got ${out% *} bytes, want $want" >&2; exit 1; }
  echo "${out#* }"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
raw=() file=()
for _ in $(seq 1 "$rounds"); do
  raw+=("$(speed "http://127.0.0.1:$port/raw/node1/app.log")")
  file+=("$(speed "file://$work/root/node1/app.log")")
done
r=$(printf '%s\n' "${raw[@]}" | median)
f=$(printf '%s\n' "${file[@]}" | median)
awk -v r="$r" -v f="$f" -v mib="$size_mib" 'BEGIN {
  printf "raw download (%d MiB): /raw %.0f MiB/s, file:// %.0f MiB/s, ratio %.2f (target >= 0.8)\n", mib, r/1048576, f/1048576, r/f }'

lat=()
for _ in $(seq 1 "$((rounds * 4))"); do
  lat+=("$(curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/api/v1/files/node1/big?limit=10000")")
done
l=$(printf '%s\n' "${lat[@]}" | median)
awk -v l="$l" 'BEGIN { printf "list 10,000 files via /api/v1/files: median %.1f ms (target < 50 ms)\n", l*1000 }'
