#!/usr/bin/env bash
# Agent benchmarks (issue 3), against one `syncer serve` on loopback:
#   1. unchanged tree of 100,000 files: `syncer push` time over
#      `find DIR -type f -printf '%s %T@\n'` time (target <= 1.5)
#   2. initial push of 1 GiB in 1,000 files and of 20,000 files of 4 KiB:
#      `syncer push --parallel 4` against `rclone copy --transfers 4` to the
#      same server (target: faster than rclone on both)
#   3. append 1 KiB to 10% of the 1,000 files of 1 MiB: bytes sent over bytes
#      appended (target 1.00), and what rclone re-sends for the same change
#   4. peak RSS of `syncer push` with a 1,000,000-entry manifest (target
#      < 150 MiB), from /usr/bin/time -v
# Timings alternate syncer and its peer, ROUNDS times each, and report the
# median. QUICK=1 shrinks every size (keeps the script alive in CI).
#
# Usage: scripts/bench/agent.sh        (env: ROUNDS, QUICK, SYNCER_BIN, KEEP)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-3}
bin=${SYNCER_BIN:-bin/syncer}
[ -x "$bin" ] || go build -o "$bin" ./cmd/syncer
bin=$(readlink -f "$bin")
command -v rclone >/dev/null || { echo "rclone is not installed" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is not installed (Debian package time)" >&2; exit 2; }

if [ "${QUICK:-}" = 1 ]; then
  unchanged_files=5000 big_files=50 big_size=1MiB small_files=1000 manifest_entries=50000
else
  unchanged_files=100000 big_files=1000 big_size=1MiB small_files=20000 manifest_entries=1000000
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

gen=$work/gen-logs
go build -o "$gen" ./scripts/gen-logs

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.3f", b-a}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a" }'; }

# One historian; accounts agent1 (syncer) and rc1 (rclone), same password.
pw=bench-$RANDOM$RANDOM
port=$(free_port)
mkdir -p "$work/root" "$work/state"
echo "$pw" | "$bin" user add agent1 --password-stdin --state "$work/state" >/dev/null
# rclone sets each file's mtime (MFMT) after the upload: its account needs T.
echo "$pw" | "$bin" user add rc1 --perm elramwT --password-stdin --state "$work/state" >/dev/null
"$bin" serve --root "$work/root" --state "$work/state" --ftp "127.0.0.1:$port" --http 127.0.0.1:0 \
  --passive-ports 42000-42200 2>"$work/serve.log" &
pids+=($!)
for _ in $(seq 100); do
  curl -s --max-time 1 -u "agent1:$pw" "ftp://127.0.0.1:$port/" >/dev/null 2>&1 && break
  sleep 0.1
done
export SYNCER_PASSWORD=$pw
remote=":ftp,host=127.0.0.1,port=$port,user=rc1,pass=$(rclone obscure "$pw"):"

# push DIR STATE [extra...] -> prints the --json summary
push() {
  local dir=$1 state=$2; shift 2
  "$bin" push --server "ftp://127.0.0.1:$port" --user agent1 --agent-id agent1 \
    --dir "$dir" --state "$state" --parallel 4 --json "$@"
}
json() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

echo "| scenario | syncer | peer | ratio | target |"
echo "| --- | --- | --- | --- | --- |"

# 1. Unchanged tree.
tree=$work/tree-unchanged
"$gen" -out "$tree" -files "$unchanged_files" -size 200B >/dev/null
push "$tree" "$work/a-state-1" >/dev/null
s_t=(); f_t=()
for _ in $(seq "$rounds"); do
  t0=$(now); out=$(push "$tree" "$work/a-state-1"); s_t+=("$(elapsed "$t0")")
  [ "$(echo "$out" | json bytes_sent)" = 0 ] || { echo "unchanged push sent bytes: $out" >&2; exit 1; }
  t0=$(now); find "$tree" -type f -printf '%s %T@\n' >/dev/null; f_t+=("$(elapsed "$t0")")
done
s=$(median "${s_t[@]}"); f=$(median "${f_t[@]}")
echo "| unchanged tree, $unchanged_files files: syncer push vs find (s) | $s | $f | $(ratio "$s" "$f") | <= 1.5 |"

# 2. Initial pushes against rclone copy --transfers 4.
initial() { # name files size
  local name=$1 files=$2 size=$3 src=$work/tree-$1
  "$gen" -out "$src" -files "$files" -size "$size" >/dev/null
  local st=() rt=() r
  for r in $(seq "$rounds"); do
    rm -rf "$work/root/agent1/$name" "$work/root/rc1/$name" "$work/a-state-$name"
    t0=$(now); push "$src" "$work/a-state-$name" --agent-id agent1 >/dev/null; st+=("$(elapsed "$t0")")
    t0=$(now); rclone copy --transfers 4 --checkers 8 "$src" "$remote/rc1/$name" 2>/dev/null; rt+=("$(elapsed "$t0")")
    # Both copies must be complete.
    diff <(cd "$src" && find . -type f | sort) <(cd "$work/root/rc1/$name" && find . -type f | sort) >/dev/null \
      || { echo "rclone copy of $name incomplete" >&2; exit 1; }
    rm -rf "$work/root/agent1"/* 2>/dev/null || true
  done
  local s r2; s=$(median "${st[@]}"); r2=$(median "${rt[@]}")
  echo "| initial push, $files files of $size: syncer vs rclone copy --transfers 4 (s) | $s | $r2 | $(ratio "$s" "$r2") | < 1 |"
}
initial big "$big_files" "$big_size"
initial small "$small_files" 4KiB

# 3. Append 1 KiB to 10% of the 1 MiB files.
src=$work/tree-big
rm -rf "$work/a-state-app" "$work/root/agent1"
push "$src" "$work/a-state-app" >/dev/null
rclone copy --transfers 4 "$src" "$remote/rc1/app" 2>/dev/null
appended=$("$gen" -out "$src" -append 10% -append-size 1KiB | awk '{print $2}')
sent=$(push "$src" "$work/a-state-app" | json bytes_sent)
# rclone's one-line stats: "INFO  :   100.098 MiB / 100.098 MiB, 100%, ..."
rc_sent=$(rclone copy --transfers 4 --stats-one-line -v "$src" "$remote/rc1/app" 2>&1 |
  grep ' / ' | tail -1 | sed 's/.*INFO  :[[:space:]]*//; s/ \/.*//')
echo "| append 1 KiB to 10% of $big_files files of $big_size: bytes sent / bytes appended | $(ratio "$sent" "$appended") ($sent / $appended) | rclone sent $rc_sent | | 1.00 |"

# 4. Peak RSS with a large manifest.
st=$work/a-state-rss
rm -rf "$st"
small=$work/tree-rss
"$gen" -out "$small" -files 1000 -size 1KiB >/dev/null
push "$small" "$st" >/dev/null
"$gen" -out "$small" -seed-manifest "$st" -agent agent1 -entries "$manifest_entries" >/dev/null
/usr/bin/time -v "$bin" push --server "ftp://127.0.0.1:$port" --user agent1 --agent-id agent1 \
  --dir "$small" --state "$st" --json >/dev/null 2>"$work/time.txt"
rss_kb=$(awk -F: '/Maximum resident set size/{gsub(/ /,"",$2); print $2}' "$work/time.txt")
echo "| peak RSS of syncer push, manifest of $manifest_entries entries (MiB) | $(awk -v k="$rss_kb" 'BEGIN{printf "%.1f", k/1024}') | | | < 150 |"
