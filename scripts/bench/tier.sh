#!/usr/bin/env bash
# The storage tier's measurements (issue 15), side by side in one run, on a
# throwaway Ceph RGW on loopback (scripts/ceph/ceph-run.sh) or on the S3
# endpoint in SYNCER_TEST_S3_ENDPOINT (+ _ACCESS_KEY, _SECRET_KEY):
#
#   1. bucket bytes / archived bytes on the generated logs (gen-logs, mixed sizes)
#   2. S3 requests per GiB sealed
#   3. ingest (syncer push of the same tree) with the tier on / off
#   4. index rebuild from the bucket (state and archive deleted): files, seconds
#   5. grep -c over one sealed, evicted BIG_MIB log through the mount (cold
#      cache, then warm) / the same file hot (all local, passthrough)
#   6. random 4 KiB reads through the mount of the evicted file: p50, p99 (ms)
#
#   FILES=300 BIG_MIB=1024 ROUNDS=3 bash scripts/bench/tier.sh   (make bench-tier)
#   QUICK=1: FILES=60 BIG_MIB=128 ROUNDS=1; PARTS=big: only 5 and 6
#   REBUILD_FILES=N: also 4 with N files of 4 KiB (PARTS=rebuild: only that)
# Needs root (FUSE mount, Ceph). Prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "tier.sh: needs root (FUSE, Ceph)"; exit 2; }
if [ "${QUICK:-}" = 1 ]; then FILES=${FILES:-60}; BIG_MIB=${BIG_MIB:-128}; ROUNDS=${ROUNDS:-1}; fi
FILES=${FILES:-300}; BIG_MIB=${BIG_MIB:-1024}; ROUNDS=${ROUNDS:-3}
go=${GO:-go}
W=$(mktemp -d "${BENCH_DIR:-/var/tmp}/syncer-tier-bench-XXXXXX")
bin=$W/syncer
$go build -o "$bin" ./cmd/syncer
$go build -o "$W/gen-logs" ./scripts/gen-logs
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  for m in "$W"/mnt*; do umount -l "$m" 2>/dev/null || true; done
  [ -n "${CEPH_STARTED:-}" ] && CEPH_DIR=$W/ceph bash scripts/ceph/ceph-run.sh stop >/dev/null 2>&1
  rm -rf "$W"
}
trap cleanup EXIT

if [ -n "${SYNCER_TEST_S3_ENDPOINT:-}" ]; then
  EP=$SYNCER_TEST_S3_ENDPOINT; AK=$SYNCER_TEST_S3_ACCESS_KEY; SK=$SYNCER_TEST_S3_SECRET_KEY
else
  port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  read -r _ EP AK SK < <(CEPH_DIR=$W/ceph MON_PORT=$(port) RGW_PORT=$(port) CEPH_MEM=$(( (BIG_MIB + 1024) << 20 )) bash scripts/ceph/ceph-run.sh start | grep '^S3 ')
  CEPH_STARTED=1
fi
export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_REGION=us-east-1
s3() { python3 - "$@" <<'PY'
import sys, hmac, hashlib, datetime, urllib.request, os
# Minimal SigV4 for make-bucket (PUT /bucket), so the script needs no S3 CLI.
ep, method, path = sys.argv[1], sys.argv[2], sys.argv[3]
ak, sk = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
host = ep.split("://")[1]
t = datetime.datetime.now(datetime.UTC); amz = t.strftime("%Y%m%dT%H%M%SZ"); d = t.strftime("%Y%m%d")
ph = hashlib.sha256(b"").hexdigest()
creq = f"{method}\n{path}\n\nhost:{host}\nx-amz-content-sha256:{ph}\nx-amz-date:{amz}\n\nhost;x-amz-content-sha256;x-amz-date\n{ph}"
scope = f"{d}/us-east-1/s3/aws4_request"
sts = f"AWS4-HMAC-SHA256\n{amz}\n{scope}\n{hashlib.sha256(creq.encode()).hexdigest()}"
k = ("AWS4" + sk).encode()
for x in (d, "us-east-1", "s3", "aws4_request"): k = hmac.new(k, x.encode(), hashlib.sha256).digest()
sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
req = urllib.request.Request(ep + path, method=method, headers={"x-amz-date": amz, "x-amz-content-sha256": ph,
  "Authorization": f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}"})
urllib.request.urlopen(req).read()
PY
}
freeaddr() { echo "127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"; }
metric() { curl -s "http://$1/metrics" | awk -v m="$2" '$1==m {print $2}'; }
now() { date +%s.%N; }

# start NAME [serve flags...]: a historian under $W/NAME; sets FTP, HTTP, PID
start() {
  local n=$1; shift
  mkdir -p "$W/$n"
  FTP=$(freeaddr); HTTP=$(freeaddr)
  [ -f "$W/$n/state/users.yaml" ] || echo pw-bench | "$bin" user add node1 --password-stdin --state "$W/$n/state" >/dev/null
  "$bin" serve --root "$W/$n/archive" --state "$W/$n/state" --ftp "$FTP" --http "$HTTP" --http-no-login \
    --log-level warn "$@" 2>>"$W/$n.log" &
  PID=$!; pids+=("$PID")
  for _ in $(seq 300); do curl -s -o /dev/null "http://$HTTP/healthz" && return 0; sleep 0.1; done
  echo "serve $n did not start:"; cat "$W/$n.log"; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; }
push() { SYNCER_PASSWORD=pw-bench "$bin" push --server "ftp://$FTP" --user node1 --agent-id node1 --dir "$1" --state "$2" >/dev/null; }
# sealed: wait until the tier's backlog is 0 after at least one full pass
sealed() {
  local r0; r0=$(metric "$HTTP" syncer_tier_rounds_total)
  for _ in $(seq 6000); do
    local r u; r=$(metric "$HTTP" syncer_tier_rounds_total); u=$(metric "$HTTP" syncer_tier_unsealed_bytes)
    if [ "${u:-1}" = 0 ] && awk -v a="$r" -v b="$r0" 'BEGIN{exit !(a>b+1)}'; then return 0; fi
    sleep 0.2
  done
  echo "not sealed in time"; exit 1
}

logs_bytes=0
if [ "${PARTS:-all}" != rebuild ]; then
echo "generating $FILES files (mixed sizes) and one ${BIG_MIB} MiB log" >&2
"$W/gen-logs" -out "$W/logs" -files "$FILES" -size mixed >/dev/null
"$W/gen-logs" -out "$W/big" -files 1 -apps 1 -days 1 -size "${BIG_MIB}MiB" -seed 7 >/dev/null
logs_bytes=$(du -sb --apparent-size "$W/logs" | cut -f1)
fi
tierflags() { echo --tier "s3://$1/h" --tier-endpoint "$EP" --tier-path-style --seal-idle 2s --local-keep 0s; }

# 3. ingest on/off, alternating; 1-2 from the tier-on runs.
on=(); off=(); ratio=-; reqgib=-; sealedmib=-; ton=0; toff=0; rebuild=-; nfiles=0
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }
if [ "${PARTS:-all}" = all ]; then
for r in $(seq "$ROUNDS"); do
  for mode in off on; do
    rm -rf "$W/i" "$W/ist"; b=bench-ingest-$r-$mode-$RANDOM
    if [ $mode = on ]; then s3 "$EP" PUT "/$b"; start i $(tierflags "$b"); else start i; fi
    t0=$(now); push "$W/logs" "$W/ist"; t1=$(now)
    t=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
    if [ $mode = on ]; then
      on+=("$t"); sealed
      sb=$(metric "$HTTP" syncer_tier_sealed_bytes_total); cb=$(metric "$HTTP" syncer_tier_segment_bytes_total); rq=$(metric "$HTTP" syncer_tier_s3_requests)
      ratio=$(awk -v c="$cb" -v s="$sb" 'BEGIN{printf "%.3f", c/s}')
      reqgib=$(awk -v q="$rq" -v s="$sb" 'BEGIN{printf "%.0f", q/(s/1073741824)}')
      sealedmib=$(awk -v s="$sb" 'BEGIN{printf "%.0f", s/1048576}')
      last_bucket=$b
    else off+=("$t"); fi
    stop
  done
done
ton=$(med "${on[@]}"); toff=$(med "${off[@]}")

# 4. rebuild from the bucket of the last tier-on run.
rm -rf "$W/i"
t0=$(now); start i $(tierflags "$last_bucket")
nfiles=$(find "$W/logs" -type f | wc -l)
for _ in $(seq 6000); do
  v=$(curl -s "http://$HTTP/api/v1/agents" | python3 -c 'import sys,json; a=json.load(sys.stdin)["agents"]; print(sum(x["verified"] for x in a))' 2>/dev/null || echo 0)
  [ "$v" -ge "$nfiles" ] && break; sleep 0.2
done
t1=$(now); rebuild=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
stop
fi

# 4b. rebuild of REBUILD_FILES small (4 KiB) files, sealed into a bucket of
# their own (PARTS=rebuild: only this).
rebuild_n=-; rebuild_s=-; rebuild_seal=-
if [ "${REBUILD_FILES:-0}" -gt 0 ] && { [ "${PARTS:-all}" = all ] || [ "${PARTS:-all}" = rebuild ]; }; then
  echo "generating $REBUILD_FILES files of 4 KiB" >&2
  "$W/gen-logs" -out "$W/small" -files "$REBUILD_FILES" -size 4KiB -apps 20 -days 50 -seed 3 >/dev/null
  b=bench-rebuild-$RANDOM; s3 "$EP" PUT "/$b"
  rm -rf "$W/r"; t0=$(now); start r $(tierflags "$b"); push "$W/small" "$W/rst"; sealed; t1=$(now); stop
  rebuild_seal=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", b-a}')
  rm -rf "$W/r"
  t0=$(now); start r $(tierflags "$b")
  for _ in $(seq 30000); do
    v=$(curl -s "http://$HTTP/api/v1/agents" | python3 -c 'import sys,json; a=json.load(sys.stdin)["agents"]; print(sum(x["verified"] for x in a))' 2>/dev/null || echo 0)
    [ "$v" -ge "$REBUILD_FILES" ] && break; sleep 0.5
  done
  t1=$(now); rebuild_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}'); rebuild_n=$REBUILD_FILES
  stop
fi
[ "${PARTS:-all}" = rebuild ] && { echo "| rebuild from the bucket, $rebuild_n files of 4 KiB (pushed and sealed in ${rebuild_seal}s), until all verified | ${rebuild_s}s | |"; exit 0; }

# 5-6. the big log, hot (tier off) and evicted (tier on), through the mount.
mkdir -p "$W/mnt-hot" "$W/mnt-tier"
start hot --mount "$W/mnt-hot"; HOT_PID=$PID; HOT_HTTP=$HTTP
push "$W/big" "$W/bst-hot"
b=bench-big-$RANDOM; s3 "$EP" PUT "/$b"
start tier $(tierflags "$b") --mount "$W/mnt-tier"; TIER_PID=$PID
push "$W/big" "$W/bst-tier"; sealed
f=$(cd "$W/big" && find . -type f -name '*.log' | head -1); f=${f#./}
want=$(grep -c ERROR "$W/big/$f"); size=$(stat -c %s "$W/big/$f")
for m in hot tier; do # the index (and so the mount) follows the upload
  for _ in $(seq 600); do [ "$(stat -c %s "$W/mnt-$m/node1/$f" 2>/dev/null)" = "$size" ] && break; sleep 0.1; done
done
# tgrep FILE: seconds of grep -c, which must find the source's count
tgrep() {
  local t0 t1 n; t0=$(now); n=$(grep -c ERROR "$1"); t1=$(now)
  [ "$n" = "$want" ] || { echo "grep -c $1: $n, want $want" >&2; exit 1; }
  awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}'
}
hot=(); cold=(); warm=()
for r in $(seq "$ROUNDS"); do
  sync; echo 3 >/proc/sys/vm/drop_caches # both from their store: the disk, the bucket
  hot+=("$(tgrep "$W/mnt-hot/node1/$f")")
  # Cold: a fresh tier process has an empty cache; drop the page cache too.
  kill "$TIER_PID"; wait "$TIER_PID" 2>/dev/null || true; umount -l "$W/mnt-tier" 2>/dev/null || true
  start tier $(tierflags "$b") --mount "$W/mnt-tier"; TIER_PID=$PID
  for _ in $(seq 600); do [ "$(stat -c %s "$W/mnt-tier/node1/$f" 2>/dev/null)" = "$size" ] && break; sleep 0.1; done
  sync; echo 3 >/proc/sys/vm/drop_caches
  cold+=("$(tgrep "$W/mnt-tier/node1/$f")")
  warm+=("$(tgrep "$W/mnt-tier/node1/$f")")
done
# Random 4 KiB reads (fresh process, cold cache).
kill "$TIER_PID"; wait "$TIER_PID" 2>/dev/null || true; umount -l "$W/mnt-tier" 2>/dev/null || true
start tier $(tierflags "$b") --mount "$W/mnt-tier"; TIER_PID=$PID
for _ in $(seq 600); do [ "$(stat -c %s "$W/mnt-tier/node1/$f" 2>/dev/null)" = "$size" ] && break; sleep 0.1; done
sync; echo 3 >/proc/sys/vm/drop_caches
lat=$(python3 - "$W/mnt-tier/node1/$f" <<'PY'
import os, sys, time, random
fd = os.open(sys.argv[1], os.O_RDONLY); size = os.fstat(fd).st_size
random.seed(1); ts = []
for _ in range(500):
    off = random.randrange(0, size - 4096) & ~4095
    t0 = time.perf_counter(); os.pread(fd, 4096, off); ts.append((time.perf_counter() - t0) * 1000)
ts.sort(); print("%.2f %.2f" % (ts[len(ts)//2], ts[int(len(ts)*0.99)]))
PY
)
hmed=$(med "${hot[@]}"); cmed=$(med "${cold[@]}"); wmed=$(med "${warm[@]}")
cat <<TABLE

### Storage tier (scripts/bench/tier.sh: FILES=$FILES BIG_MIB=$BIG_MIB ROUNDS=$ROUNDS; medians)

| measure | value | peer / target |
| --- | --- | --- |
| bucket bytes / archived bytes (gen-logs, $FILES files, ${sealedmib} MiB) | $ratio | target ≤ 0.2 |
| S3 requests per GiB sealed | $reqgib | |
| ingest with tier on / off (push of $((logs_bytes >> 20)) MiB: ${ton}s / ${toff}s) | $(awk -v a="$ton" -v b="$toff" 'BEGIN{if (a>0) printf "%.2f", b/a; else print "-"}') | target ≥ 0.95 (throughput ratio) |
| rebuild from the bucket, $nfiles files, until all verified | ${rebuild}s | |
| rebuild from the bucket, $rebuild_n files of 4 KiB (pushed and sealed in ${rebuild_seal}s), until all verified | ${rebuild_s}s | |
| grep -c over a sealed ${BIG_MIB} MiB log via the mount: hot (local disk) / evicted (bucket), caches dropped | $(awk -v h="$hmed" -v c="$cmed" 'BEGIN{printf "%.2f", h/c}') (${hmed}s / ${cmed}s) | target ≥ 0.5 |
| the same, evicted, read again (tier cache and page cache warm) | $(awk -v h="$hmed" -v c="$wmed" 'BEGIN{printf "%.2f", h/c}') (${wmed}s) | |
| random 4 KiB read through the mount, evicted, cold: p50 / p99 ms | ${lat/ / \/ } | target p50 < 5 ms |
TABLE
