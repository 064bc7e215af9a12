#!/usr/bin/env bash
# consul-dev.sh [HTTP_PORT] [extra consul agent args...]
# Starts `consul agent -dev` in the background, bound to 127.0.0.1 only, with its
# files (log, pid, node-id) in a fresh temp dir, waits until it has a raft leader
# and its own node is in the catalog (typically ~0.2 s), then prints shell-evalable lines:
#   CONSUL_PID=1234
#   CONSUL_HTTP_ADDR=http://127.0.0.1:8500
#   CONSUL_DIR=/tmp/consul-dev.8500.XXXXXX
# Stop it with: kill "$CONSUL_PID"   (SIGTERM; exits within ~2 s, status 1), then rm -rf "$CONSUL_DIR".
# All state is in memory (dev mode): a restart starts from an empty KV/catalog.
#
# Ports used: HTTP_PORT (HTTP API), HTTP_PORT+1 (serf LAN tcp+udp), HTTP_PORT+2 (server RPC).
# DNS, gRPC, HTTPS and serf WAN are disabled. Override with CONSUL_SERF_LAN_PORT / CONSUL_SERVER_PORT.
# Binary: $CONSUL_BIN, else `consul` on PATH, else bin/consul next to this script.
# Env: CONSUL_NODE (node name, default consul-dev-PORT), CONSUL_START_TIMEOUT (s, default 30),
#      CONSUL_HTTP_TOKEN (used only for the readiness probe when ACLs are on),
#      CONSUL_TMPDIR (parent of the temp dir, default ${TMPDIR:-/tmp}).
set -euo pipefail

PORT=${1:-8500}
[ $# -gt 0 ] && shift
case "$PORT" in ''|*[!0-9]*) echo "usage: $0 [HTTP_PORT] [consul agent args...]" >&2; exit 2 ;; esac

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${CONSUL_BIN:-$(command -v consul || true)}
[ -n "$BIN" ] || BIN="$HERE/../.consul/bin/consul"
[ -x "$BIN" ] || { echo "consul binary not found (set CONSUL_BIN or run install-consul.sh)" >&2; exit 1; }

SERF_LAN=${CONSUL_SERF_LAN_PORT:-$((PORT + 1))}
SERVER=${CONSUL_SERVER_PORT:-$((PORT + 2))}
NODE=${CONSUL_NODE:-consul-dev-$PORT}
TIMEOUT=${CONSUL_START_TIMEOUT:-30}
ADDR="http://127.0.0.1:$PORT"

port_busy() { # tcp listener or bound udp socket on 127.0.0.1/any
  if command -v ss >/dev/null 2>&1; then
    ss -Hlntu 2>/dev/null | awk '{print $5}' | grep -Eq "(^|[:.])$1\$"
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
for p in "$PORT" "$SERF_LAN" "$SERVER"; do
  if port_busy "$p"; then echo "port $p is already in use" >&2; exit 1; fi
done

DIR=$(mktemp -d "${CONSUL_TMPDIR:-${TMPDIR:-/tmp}}/consul-dev.$PORT.XXXXXX")

# setsid + redirected stdio: the agent outlives this script and holds no pipe of
# the caller open (so `execSync('consul-dev.sh')` from Node returns).
setsid "$BIN" agent -dev \
  -node "$NODE" -bind 127.0.0.1 -client 127.0.0.1 \
  -http-port "$PORT" -serf-lan-port "$SERF_LAN" -server-port "$SERVER" \
  -serf-wan-port -1 -dns-port -1 -grpc-port -1 -https-port -1 \
  -data-dir "$DIR/data" -pid-file "$DIR/consul.pid" \
  -hcl 'disable_update_check = true' \
  "$@" </dev/null >"$DIR/consul.log" 2>&1 &
PID=$!   # = consul's PID (setsid execs in place when not a group leader) ...

fail() {
  echo "consul dev agent failed: $1 (log: $DIR/consul.log)" >&2
  tail -n 20 "$DIR/consul.log" >&2 || true
  kill "$PID" 2>/dev/null || true
  exit 1
}

AUTH=()
[ -n "${CONSUL_HTTP_TOKEN:-}" ] && AUTH=(-H "X-Consul-Token: $CONSUL_HTTP_TOKEN")
deadline=$((SECONDS + TIMEOUT)); leader_since=""
while :; do
  # ... but trust consul's own pid file once it exists
  [ -s "$DIR/consul.pid" ] && PID=$(cat "$DIR/consul.pid")
  kill -0 "$PID" 2>/dev/null || fail "process exited"
  leader=$(curl -s -m 2 "$ADDR/v1/status/leader" 2>/dev/null || true)
  if [ -n "$leader" ] && [ "$leader" != '""' ] && [ "${leader#\"}" != "$leader" ]; then
    [ -n "$leader_since" ] || leader_since=$SECONDS
    # also wait for our own node in the catalog (sessions need it). With ACLs
    # (default deny) it is invisible to anonymous reads: give up on that after 3 s.
    node=$(curl -s -m 2 "${AUTH[@]}" "$ADDR/v1/catalog/node/$NODE" 2>/dev/null || true)
    case "$node" in *'"Node"'*) break ;; esac
    [ $((SECONDS - leader_since)) -lt 3 ] || break
  fi
  [ $SECONDS -lt $deadline ] || fail "no leader after ${TIMEOUT}s"
  sleep 0.05
done

echo "CONSUL_PID=$PID"
echo "CONSUL_HTTP_ADDR=$ADDR"
echo "CONSUL_DIR=$DIR"
