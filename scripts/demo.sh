#!/usr/bin/env bash
# make demo: build syncer, start a historian on loopback with a demo account,
# push a generated log tree, append to it and push again, and print where to
# look. Everything lives under ./demo (removed and made anew on each run).
# The historian keeps running in the background; `make demo-stop` stops it.
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

say "account: demo-node (confined to /demo-node/)"
"$bin" user add demo-node --password-stdin --state "$demo/state" <"$demo/password"
"$bin" user list --state "$demo/state"

say "historian: FTP 127.0.0.1:$ftp_port, HTTP 127.0.0.1:$http_port, archive $demo/archive"
mount_args=()
if [ "$(id -u)" = 0 ] && [ -e /dev/fuse ] && "$bin" serve --help 2>/dev/null | grep -q -- '--mount'; then
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
find "$demo/node/logs" -type f | head -5; echo "... $(find "$demo/node/logs" -type f | wc -l) files, $(du -sh "$demo/node/logs" | cut -f1)"

push() {
  SYNCER_PASSWORD_FILE="$demo/password" "$bin" push --server "ftp://127.0.0.1:$ftp_port" --user demo-node \
    --agent-id demo-node --dir "$demo/node/logs" --state "$demo/agent-state" "$@"
}
say "first push (everything is new)"
push --json | tee "$demo/push1.json"

say "second push (nothing changed: no bytes sent)"
push --json | tee "$demo/push2.json"

say "append 3 lines to one log and push again (only those bytes go)"
first=$(find "$demo/node/logs" -name '*.log' -type f | sort | head -1)
printf '2026-11-24T12:00:0%d.000Z INFO demo appended line %d\n' 1 1 2 2 3 3 >>"$first"
push --json | tee "$demo/push3.json"

say "the archive"
(cd "$demo/archive" && find . -path ./demo-node/.syncer -prune -o -type f -print | sort | head -10)
echo "..."
if cmp -s "$first" "$demo/archive/demo-node/${first#"$demo/node/logs/"}"; then
  echo "archived copy of ${first#"$demo/node/logs/"} is byte-identical to the node's"
else
  echo "archived copy of ${first#"$demo/node/logs/"} DIFFERS from the node's" >&2; exit 1
fi

say "an API token for scripts (read-only, demo-node's tree)"
"$bin" token add demo-script --agent demo-node --state "$demo/state" >"$demo/token" && chmod 600 "$demo/token"
curl -sS -H "Authorization: Bearer $(cat "$demo/token")" "http://127.0.0.1:$http_port/api/v1/files/demo-node/" | head -c 300 || true; echo " ..."

say "where to look"
cat <<MSG
  archive root:   $demo/archive            (one directory per agent)
  FTP:            ftp://127.0.0.1:$ftp_port   user demo-node, password in $demo/password
  web viewer:     http://127.0.0.1:$http_port/   log in as demo-node with the password in $demo/password
                  (the viewer wants a login on loopback too; JSON API: /api/v1/agents)
  API token:      curl -H "Authorization: Bearer \$(cat $demo/token)" http://127.0.0.1:$http_port/api/v1/agents
MSG
if [ ${#mount_args[@]} -gt 0 ]; then
  echo "  FUSE view:      $demo/mnt   (try: grep -r ERROR $demo/mnt/*/ | head)"
else
  echo "  FUSE view:      not mounted (needs root, /dev/fuse and a build with the FUSE view)"
fi
cat <<MSG
  server log:     $demo/serve.log
  push again:     SYNCER_PASSWORD_FILE=$demo/password $bin push --server ftp://127.0.0.1:$ftp_port \\
                    --user demo-node --agent-id demo-node --dir $demo/node/logs --state $demo/agent-state
  stop:           make demo-stop
MSG
