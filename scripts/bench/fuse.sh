#!/usr/bin/env bash
# FUSE view: the same commands on the archive directory and through
# `syncer mount`, side by side in one run, page cache warm (one untimed run
# of each first), ROUNDS alternating runs. ratio = backing time / mount time
# of the same round (1.0 = as fast as the disk; higher is better for the
# view), given as median with min-max: the machine may be shared.
#
# BASE_BIN=path/to/older/syncer mounts that binary too, at a second mount
# point over the same archive, and times it in the same rounds: before and
# after a change, side by side.
#
#   grep -c over one large log      (SIZE_MIB, default 1024; target >= 0.95)
#   grep -r over many 20 KiB files  (SMALL_FILES, default 10000; target >= 0.3),
#     printing the matching lines (as typed at a shell) and only a count per
#     file (-c: less output, so the view's cost per open weighs more)
#   find -type f | wc -l            (FIND_FILES, default 100000)
#
# Usage: sudo scripts/bench/fuse.sh      (needs root and /dev/fuse)
#        QUICK=1 scripts/bench/fuse.sh   (small sizes, to keep the harness alive)
#        BASE_BIN=/tmp/syncer.old ROUNDS=9 scripts/bench/fuse.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${QUICK:-}" = 1 ]; then
  : "${SIZE_MIB:=32}" "${SMALL_FILES:=500}" "${FIND_FILES:=2000}" "${ROUNDS:=1}"
fi
size_mib=${SIZE_MIB:-1024}
small_files=${SMALL_FILES:-10000}
find_files=${FIND_FILES:-100000}
rounds=${ROUNDS:-5}
bin=${SYNCER_BIN:-bin/syncer}
base_bin=${BASE_BIN:-}
[ -x "$bin" ] || go build -o "$bin" ./cmd/syncer
if [ "$(id -u)" != 0 ] || [ ! -e /dev/fuse ]; then
  echo "the FUSE benchmark needs root and /dev/fuse (skipped)" >&2; exit 0
fi

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/syncer-fuse-bench.XXXXXX")
mnt="$work/mnt"
bmnt="$work/mnt-base"
pid=
bpid=
cleanup() {
  local p
  for p in $pid $bpid; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  mountpoint -q "$mnt" 2>/dev/null && umount -l "$mnt" || true
  mountpoint -q "$bmnt" 2>/dev/null && umount -l "$bmnt" || true
  rm -rf "$work"
}
trap cleanup EXIT
arch="$work/archive"
mkdir -p "$arch/bench/big" "$arch/bench/many" "$arch/bench/tree" "$arch/bench/.syncer" "$work/state" "$work/state-base" "$mnt" "$bmnt"

# One chunk of varied log lines, repeated up to SIZE_MIB.
awk 'BEGIN { srand(7); split("INFO DEBUG WARN ERROR", lv, " ");
  for (i = 0; i < 12000; i++) printf "2026-11-24T10:%02d:%02d.%03dZ %s node17 request %d took %dms path=/api/v1/items/%d\n",
    int(i/60)%60, i%60, int(rand()*1000), lv[1+int(rand()*4)], int(rand()*1e9), int(rand()*5000), int(rand()*1e6) }' >"$work/chunk"
reps=$(( (size_mib << 20) / $(stat -c %s "$work/chunk") + 1 ))
{ for _ in $(seq "$reps"); do cat "$work/chunk"; done | head -c $((size_mib << 20)) >"$arch/bench/big/app.log"; } 2>/dev/null || true
[ "$(stat -c %s "$arch/bench/big/app.log")" = $((size_mib << 20)) ] || { echo "could not write the large log" >&2; exit 1; }

# SMALL_FILES files of 20 KiB in directories of 100, and FIND_FILES small ones.
python3 - "$arch/bench" "$small_files" "$find_files" "$work/chunk" <<'PY'
import os, sys
base, n_small, n_find, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), open(sys.argv[4], 'rb').read()
for i in range(n_small):
    d = os.path.join(base, 'many', 'd%03d' % (i // 100)); os.makedirs(d, exist_ok=True)
    off = (i * 4099) % (len(chunk) - 20480)
    with open(os.path.join(d, 'f%05d.log' % i), 'wb') as f: f.write(chunk[off:off + 20480])
for i in range(n_find):
    d = os.path.join(base, 'tree', 'd%04d' % (i // 100)); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'f%06d.log' % i), 'wb') as f: f.write(b'x\n')
PY

# mount_view VAR BIN MOUNTPOINT STATE LOG: starts the view, waits until it
# serves, and sets VAR to its pid (for cleanup).
mount_view() {
  "$2" mount --root "$arch" --state "$4" "$3" >/dev/null 2>"$5" &
  printf -v "$1" '%s' $!
  for _ in $(seq 300); do [ -f "$3/bench/big/app.log" ] && break; kill -0 "${!1}" 2>/dev/null || { cat "$5"; exit 1; }; sleep 0.1; done
  [ -f "$3/bench/big/app.log" ] || { echo "mount did not come up"; cat "$5"; exit 1; }
}
mount_view pid "$bin" "$mnt" "$work/state" "$work/mount.log"
passthrough=$(grep -o 'passthrough=[a-z]*' "$work/mount.log" | head -1 || true)
if [ -n "$base_bin" ]; then
  mount_view bpid "$base_bin" "$bmnt" "$work/state-base" "$work/mount-base.log"
fi

# secs CMD...: wall seconds of one run. Output goes to a file, not /dev/null:
# GNU grep stops at the first match when its output is /dev/null.
secs() { local s e; s=$(date +%s.%N); "$@" >"$work/out" 2>&1 || true; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
median() { sort -g | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.3f", m }'; }
# spread: "median (min-max)" of the numbers on stdin.
spread() { sort -g | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.2f (%.2f-%.2f)", m, a[1], a[NR] }'; }
# scenario NAME TARGET CMD_WITH_@DIR@: runs on the backing dir and the mount
# (and the baseline mount), interleaved, ROUNDS times.
rows=()
scenario() {
  local name=$1 target=$2 cmd=$3 b m x tb=() tm=() tx=() rm=() rx=() t
  local cb=${cmd//@DIR@/$arch/bench} cm=${cmd//@DIR@/$mnt/bench} cx=${cmd//@DIR@/$bmnt/bench}
  # Same result both ways, or the timing means nothing.
  # Sorted: the view lists a directory in name order, the disk in its own.
  local want; want=$(bash -c "$cb" 2>&1 | sort)
  if [ "$want" != "$(bash -c "$cm" 2>&1 | sed "s#$mnt#$arch#g" | sort)" ]; then
    echo "MISMATCH in $name: the view and the archive disagree" >&2; exit 1
  fi
  if [ -n "$base_bin" ] && [ "$want" != "$(bash -c "$cx" 2>&1 | sed "s#$bmnt#$arch#g" | sort)" ]; then
    echo "MISMATCH in $name: the baseline view and the archive disagree" >&2; exit 1
  fi
  for _ in $(seq "$rounds"); do
    b=$(secs bash -c "$cb"); tb+=("$b")
    t=$(secs bash -c "$cm"); tm+=("$t"); rm+=("$(echo "$b / $t" | bc -l)")
    if [ -n "$base_bin" ]; then
      b=$(secs bash -c "$cb"); tb+=("$b")
      t=$(secs bash -c "$cx"); tx+=("$t"); rx+=("$(echo "$b / $t" | bc -l)")
    fi
  done
  b=$(printf '%s\n' "${tb[@]}" | median); m=$(printf '%s\n' "${tm[@]}" | median)
  if [ -n "$base_bin" ]; then
    x=$(printf '%s\n' "${tx[@]}" | median)
    rows+=("| $name | $b | $x | $m | $(printf '%s\n' "${rx[@]}" | spread) | $(printf '%s\n' "${rm[@]}" | spread) | $target |")
  else
    rows+=("| $name | $b | $m | $(printf '%s\n' "${rm[@]}" | spread) | $target |")
  fi
}
scenario "grep -c ERROR, one ${size_mib} MiB log" ">= 0.95" "grep -c ERROR @DIR@/big/app.log"
scenario "grep -r ERROR, ${small_files} files of 20 KiB" ">= 0.3" "grep -r ERROR @DIR@/many"
scenario "grep -r -c ERROR, the same files" ">= 0.3" "grep -r -c ERROR @DIR@/many"
scenario "find -type f | wc -l, ${find_files} files" "-" "find @DIR@/tree -type f | wc -l"

echo "FUSE view vs archive directory: $(nproc) cores, kernel $(uname -r), $passthrough, page cache warm, $rounds rounds, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
if [ -n "$base_bin" ]; then
  echo "| scenario | archive dir (s) | base mount (s) | mount (s) | base ratio, median (min-max) | ratio, median (min-max) | target |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
else
  echo "| scenario | archive dir (s) | mount (s) | ratio, median (min-max) | target |"
  echo "| --- | ---: | ---: | ---: | --- |"
fi
printf '%s\n' "${rows[@]}"
