#!/usr/bin/env bash
# make demo: build syncer, start a historian on loopback with three agent
# accounts, push a generated log tree, append to it and push again, push two
# more small agents (one that goes late, one whose push fails a file), and
# print where to look. Everything lives under ./demo (removed and made anew
# on each run). The historian keeps running in the background; `make
# demo-stop` stops it.
#
# No pipeline here ends early (head, grep -q) on purpose: under pipefail a
# writer killed by SIGPIPE fails the script, and whether it is killed
# depends on how much it writes, i.e. on the path's length (make demo from a
# deep clone exited 141). Lists are cut with sed -n, which reads them all.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SYNCER_BIN:-bin/syncer}
demo=${DEMO_DIR:-$PWD/demo}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[ -x "$bin" ] || go build -o "$bin" ./cmd/syncer
if [ -f "$demo/serve.pid" ] && kill -0 "$(cat "$demo/serve.pid")" 2>/dev/null; then
  kill "$(cat "$demo/serve.pid")"; sleep 1
fi
rm -rf "$demo"
mkdir -p "$demo/archive" "$demo/state" "$demo/node/logs" "$demo/agent-state"

free_port() { # a free loopback port, or the default when python3 is missing
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo "$1"
}
ftp_port=$(free_port 2121)
http_port=$(free_port 8080)
password="demo-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$password" >"$demo/password" && chmod 600 "$demo/password"

say "accounts: demo-node, demo-cron, demo-db (each confined to /<name>/) and demo-admin (the web viewer's login)"
for a in demo-node demo-cron demo-db; do
  "$bin" user add "$a" --password-stdin --state "$demo/state" <"$demo/password"
done
"$bin" user add demo-admin --admin --password-stdin --state "$demo/state" <"$demo/password"
"$bin" user list --state "$demo/state"

say "historian: FTP 127.0.0.1:$ftp_port, HTTP 127.0.0.1:$http_port, archive $demo/archive"
mount_args=()
if [ "$(id -u)" = 0 ] && [ -e /dev/fuse ] && "$bin" serve --help 2>/dev/null | grep -- '--mount' >/dev/null; then
  mkdir -p "$demo/mnt"; mount_args=(--mount "$demo/mnt")
fi
start_serve() {
  "$bin" serve --root "$demo/archive" --state "$demo/state" --ftp "127.0.0.1:$ftp_port" \
    --http "127.0.0.1:$http_port" "$@" >"$demo/serve.log" 2>&1 &
  echo $! >"$demo/serve.pid"
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$http_port/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$demo/serve.pid")" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
if ! start_serve "${mount_args[@]}"; then
  if [ ${#mount_args[@]} -gt 0 ]; then
    echo "(the FUSE view could not be mounted here: $(tail -1 "$demo/serve.log"); going on without it)"
    mount_args=(); start_serve || { cat "$demo/serve.log"; exit 1; }
  else
    cat "$demo/serve.log"; exit 1
  fi
fi

say "a generated log tree on the 'node'"
go run ./scripts/gen-logs -out "$demo/node/logs" -seed 42 -files 60
find "$demo/node/logs" -type f | sort | sed -n 1,5p
echo "... $(find "$demo/node/logs" -type f | wc -l) files, $(du -sh "$demo/node/logs" | cut -f1)"

# push AGENT DIR [FLAGS]: one push as that agent (its password is the demo's).
push() {
  local agent=$1 dir=$2; shift 2
  "$bin" push --server "ftp://127.0.0.1:$ftp_port" --user "$agent" --password-file "$demo/password" \
    --agent-id "$agent" --dir "$dir" --state "$demo/agent-state" "$@"
}
say "demo-node: first push (everything is new)"
push demo-node "$demo/node/logs"

say "demo-node: second push (nothing changed: no log bytes sent, only the heartbeat)"
push demo-node "$demo/node/logs"

say "demo-node: append 3 lines to one log and push again (only those bytes go)"
first=$(find "$demo/node/logs" -name '*.log' -type f | sort | sed -n 1p)
printf '2026-11-24T12:00:0%d.000Z INFO demo appended line %d\n' 1 1 2 2 3 3 >>"$first"
push demo-node "$demo/node/logs"

say "demo-cron: a cron agent that says it pushes every 2s, then stops (late within 6s)"
mkdir -p "$demo/cron/logs"
printf '2026-11-24T03:00:00.000Z INFO nightly job done\n' >"$demo/cron/logs/job.log"
push demo-cron "$demo/cron/logs" --expect-every 2s

say "demo-db: a push that fails one file (a name with a line break, which the archive refuses)"
mkdir -p "$demo/db/logs"
printf '2026-11-24T10:00:00.000Z WARN slow query 2.3s\n' >"$demo/db/logs/slow.log"
printf 'x\n' >"$demo/db/logs/bad"$'\n'"name.log"
push demo-db "$demo/db/logs" || echo "(exit $?: expected, the agents page shows the error)"

say "the archive"
(cd "$demo/archive" && find . -path '*/.syncer' -prune -o -type f -print | sort | sed -n 1,10p)
echo "..."
if cmp -s "$first" "$demo/archive/demo-node/${first#"$demo/node/logs/"}"; then
  echo "archived copy of ${first#"$demo/node/logs/"} is byte-identical to the node's"
else
  echo "archived copy of ${first#"$demo/node/logs/"} DIFFERS from the node's" >&2; exit 1
fi

say "an API token for scripts (read-only, the whole archive)"
"$bin" token add demo-script --state "$demo/state" >"$demo/token" && chmod 600 "$demo/token"
curl -sS -H "Authorization: Bearer $(cat "$demo/token")" "http://127.0.0.1:$http_port/api/v1/agents" | cut -c1-300 || true
echo " ..."

say "where to look"
cat <<MSG
  archive root:   $demo/archive            (one directory per agent)
  FTP:            ftp://127.0.0.1:$ftp_port   user demo-node, password in $demo/password
  web viewer:     http://127.0.0.1:$http_port/   log in as demo-admin with the password in $demo/password
                  (the viewer wants a login on loopback too; agents: demo-node active, demo-cron late,
                  demo-db failing; JSON API: /api/v1/agents, metrics: /metrics)
  API token:      curl -H "Authorization: Bearer \$(cat $demo/token)" http://127.0.0.1:$http_port/api/v1/agents
MSG
if [ ${#mount_args[@]} -gt 0 ]; then
  echo "  FUSE view:      $demo/mnt   (try: grep -r ERROR $demo/mnt/ | less)"
else
  echo "  FUSE view:      not mounted (needs root, /dev/fuse and a build with the FUSE view)"
fi
cat <<MSG
  server log:     $demo/serve.log
  push again:     $bin push --server ftp://127.0.0.1:$ftp_port --password-file $demo/password \\
                    --user demo-node --agent-id demo-node --dir $demo/node/logs --state $demo/agent-state
  stop:           make demo-stop
MSG
