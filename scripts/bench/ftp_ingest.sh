#!/usr/bin/env bash
# Server ingest: the same client (curl) uploads the same file to `syncer serve`
# and to vsftpd on loopback, alternating, several rounds; prints medians and
# the ratio syncer/vsftpd (throughput, higher is better for syncer).
#
# Usage: scripts/bench/ftp_ingest.sh [SIZE_MIB] [ROUNDS]   (needs root for vsftpd)
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-${SIZE_MIB:-512}}
rounds=${2:-${ROUNDS:-5}}
bin=${SYNCER_BIN:-bin/syncer}
[ -x "$bin" ] || go build -o "$bin" ./cmd/syncer
command -v vsftpd >/dev/null || { echo "vsftpd is not installed (apt-get install vsftpd)" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is not installed" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

head -c $((size_mib << 20)) /dev/urandom >"$work/payload"

# syncer serve with one agent account.
sport=$(free_port)
mkdir -p "$work/s-root" "$work/s-state"
echo bench-password | "$bin" user add bench --password-stdin --state "$work/s-state" >/dev/null
"$bin" serve --root "$work/s-root" --state "$work/s-state" --ftp "127.0.0.1:$sport" --http 127.0.0.1:0 \
  --passive-ports 41000-41100 2>"$work/s.log" &
pids+=($!)

# vsftpd, anonymous uploads into a scratch directory, running as the caller.
vport=$(free_port)
mkdir -p "$work/v-root/up" && chmod 777 "$work/v-root/up"
cat >"$work/vsftpd.conf" <<CONF
listen=YES
listen_address=127.0.0.1
listen_port=$vport
background=NO
run_as_launching_user=YES
ftp_username=$(id -un)
anonymous_enable=YES
no_anon_password=YES
anon_root=$work/v-root
anon_upload_enable=YES
anon_mkdir_write_enable=YES
anon_other_write_enable=YES
write_enable=YES
local_enable=NO
seccomp_sandbox=NO
pasv_min_port=41200
pasv_max_port=41300
xferlog_enable=NO
CONF
vsftpd "$work/vsftpd.conf" 2>"$work/v.log" &
pids+=($!)

for _ in $(seq 50); do
  curl -s --max-time 1 "ftp://127.0.0.1:$vport/" >/dev/null 2>&1 && \
  curl -s --max-time 1 -u bench:bench-password "ftp://127.0.0.1:$sport/" >/dev/null 2>&1 && break
  sleep 0.2
done

upload() { # url user:pw -> seconds
  local t0 t1
  t0=$(date +%s.%N)
  curl -sS --max-time 600 -u "$2" -T "$work/payload" "$1" >/dev/null
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}'
}

s_times=(); v_times=()
for r in $(seq "$rounds"); do
  s_times+=("$(upload "ftp://127.0.0.1:$sport/r$r.bin" bench:bench-password)")
  v_times+=("$(upload "ftp://127.0.0.1:$vport/up/r$r.bin" anonymous:)")
  cmp -s "$work/payload" "$work/s-root/bench/r$r.bin" || { echo "syncer copy r$r differs" >&2; exit 1; }
  cmp -s "$work/payload" "$work/v-root/up/r$r.bin" || { echo "vsftpd copy r$r differs" >&2; exit 1; }
  rm -f "$work/s-root/bench/r$r.bin" "$work/v-root/up/r$r.bin"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
minmax() { printf '%s\n' "$@" | sort -g | awk 'NR==1{mn=$1} {mx=$1} END {printf "%.3f..%.3f", mn, mx}'; }
sm=$(median "${s_times[@]}"); vm=$(median "${v_times[@]}")
printf '| server | median s | MiB/s | min..max s |\n|---|---|---|---|\n'
printf '| syncer serve | %.3f | %.0f | %s |\n' "$sm" "$(awk -v a="$size_mib" -v b="$sm" 'BEGIN{print a/b}')" "$(minmax "${s_times[@]}")"
printf '| vsftpd | %.3f | %.0f | %s |\n' "$vm" "$(awk -v a="$size_mib" -v b="$vm" 'BEGIN{print a/b}')" "$(minmax "${v_times[@]}")"
printf '\nthroughput ratio syncer/vsftpd: %.2f (curl -T of %d MiB, %d rounds, alternating)\n' "$(awk -v a="$vm" -v b="$sm" 'BEGIN{print a/b}')" "$size_mib" "$rounds"
