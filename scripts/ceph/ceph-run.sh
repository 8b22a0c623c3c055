#!/bin/bash
# A throwaway single-node Ceph cluster answering S3 on loopback, for tests and benchmarks:
# one mon, one mgr, one in-memory memstore OSD, radosgw with the beast frontend. About 25 s to
# the first S3 answer and ~500 MB of memory. Needs root and Debian's ceph-mon ceph-mgr ceph-osd
# radosgw ceph-common uuid-runtime.
#
#   CEPH_DIR=/tmp/c MON_PORT=13300 RGW_PORT=17480 scripts/ceph/ceph-run.sh start
#   CEPH_DIR=/tmp/c scripts/ceph/ceph-run.sh stop-rgw | start-rgw | stop
#
# start prints "S3 http://127.0.0.1:PORT ACCESS SECRET" once the S3 user exists.
# Environment: CEPH_DIR, MON_PORT, RGW_PORT, S3_ACCESS_KEY, S3_SECRET_KEY, CEPH_MEM (memstore bytes).
set -euo pipefail
D=${CEPH_DIR:-/tmp/syncer-ceph}
export CEPH_CONF=$D/ceph.conf
AK=${S3_ACCESS_KEY:-SYNCERTESTACCESS}
SK=${S3_SECRET_KEY:-SYNCERTESTSECRET0123456789}

killpids() { # killpids GLOB: TERM, then KILL what is left after 3 s
  local f
  for f in $D/run/$1.pid; do [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true; done
  for _ in $(seq 30); do
    local alive=0
    for f in $D/run/$1.pid; do [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return 0
    sleep 0.1
  done
  for f in $D/run/$1.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true; done
}

rgw_port() { sed -n 's/.*endpoint=127.0.0.1:\([0-9]*\).*/\1/p' $CEPH_CONF; }

start_rgw() {
  radosgw -n client.rgw.x
  local p; p=$(rgw_port)
  for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$p/" && return 0; sleep 0.1; done
  echo "radosgw did not answer on 127.0.0.1:$p; see $D/log/client.rgw.x.log" >&2; exit 1
}

case "${1:-start}" in
stop) killpids 'client.rgw.x'; killpids '*'; exit 0 ;;
stop-rgw) killpids 'client.rgw.x'; exit 0 ;;
kill-rgw) f=$D/run/client.rgw.x.pid; [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null; rm -f "$f"; exit 0 ;;
start-rgw) start_rgw; exit 0 ;;
start) ;;
*) echo "usage: $0 start|stop|stop-rgw|kill-rgw|start-rgw" >&2; exit 2 ;;
esac

MON=${MON_PORT:-13300}; RGW=${RGW_PORT:-17480}
rm -rf "$D"; mkdir -p $D/{mon-a,osd-0,mgr-x,rgw,log,run}
FSID=$(uuidgen)
cat > $CEPH_CONF <<CONF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MON
public network = 127.0.0.0/8
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $D/\$cluster.\$name.keyring
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
pid file = $D/run/\$name.pid
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 2000
osd crush chooseleaf type = 0
ms bind ipv4 = true
ms bind ipv6 = false
[mon]
mon data = $D/mon-\$id
mon allow pool delete = true
[osd]
osd data = $D/osd-\$id
osd objectstore = memstore
memstore device bytes = ${CEPH_MEM:-2147483648}
osd max object name len = 256
osd max object namespace len = 64
[mgr]
mgr data = $D/mgr-\$id
[client.rgw.x]
rgw frontends = beast endpoint=127.0.0.1:$RGW
rgw data = $D/rgw
CONF
ceph-authtool --create-keyring $D/mon.keyring --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring $D/ceph.client.admin.keyring --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool $D/mon.keyring --import-keyring $D/ceph.client.admin.keyring >/dev/null
cp $D/mon.keyring $D/ceph.mon.a.keyring
monmaptool --create --addv a "[v2:127.0.0.1:$MON]" --fsid $FSID $D/monmap >/dev/null
ceph-mon --mkfs -i a --monmap $D/monmap --keyring $D/mon.keyring
ceph-mon -i a
for _ in $(seq 120); do timeout 5 ceph -s >/dev/null 2>&1 && break; sleep 0.5; done
ceph auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' -o $D/ceph.mgr.x.keyring >/dev/null
ceph-mgr -i x
OSDUUID=$(uuidgen); ID=$(ceph osd new $OSDUUID)
ceph-osd -i $ID --mkfs --osd-uuid $OSDUUID --mkkey --no-mon-config > $D/log/mkfs.log 2>&1
ceph auth add osd.$ID osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' -i $D/ceph.osd.$ID.keyring >/dev/null
ceph-osd -i $ID
for _ in $(seq 240); do ceph osd stat 2>/dev/null | grep -q '1 up' && break; sleep 0.5; done
ceph auth get-or-create client.rgw.x mon 'allow rw' osd 'allow rwx' mgr 'allow rw' -o $D/ceph.client.rgw.x.keyring >/dev/null
start_rgw
radosgw-admin user create --uid=syncer-test --display-name=syncer-test --access-key=$AK --secret=$SK >/dev/null
echo "S3 http://127.0.0.1:$RGW $AK $SK"
