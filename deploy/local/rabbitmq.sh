#!/usr/bin/env bash
# Local RabbitMQ node (Debian's package) with all state under var/; no systemd needed.
# usage: rabbitmq.sh start|stop|status
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
base="$root/var/rabbitmq"
mkdir -p "$base/mnesia" "$root/var/log"
export HOME="$base"                       # the Erlang cookie lives in $HOME
export RABBITMQ_NODENAME="dealflow@localhost"
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT="${RABBITMQ_NODE_PORT:-5672}"
export RABBITMQ_DIST_PORT="${RABBITMQ_DIST_PORT:-25672}"
export ERL_EPMD_ADDRESS=127.0.0.1
# One Erlang scheduler (RABBITMQ_SCHEDULERS to change it): on a 2-core machine that the
# database and the services keep busy, a second scheduler only makes the two contend with
# each other and the OS. Measured (1.4 KB persistent events, confirmed per 100, to two
# classic queues and a stream, consumed with acks): broker CPU per event 0.39 ms with
# two schedulers and both cores busy, 0.18-0.22 ms with one; idle machine 0.22 / 0.20.
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} \
+S ${RABBITMQ_SCHEDULERS:-1}:${RABBITMQ_SCHEDULERS:-1}"
export RABBITMQ_MNESIA_BASE="$base/mnesia"
export RABBITMQ_LOG_BASE="$root/var/log"
export RABBITMQ_PID_FILE="$base/rabbitmq.pid"
export RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins"
export RABBITMQ_CONFIG_FILE="$base/rabbitmq"
# the management API serves tests (a fresh vhost per test) and people; loopback only
echo '[rabbitmq_management].' > "$RABBITMQ_ENABLED_PLUGINS_FILE"
# loopback only; quiet logs; no outbound anything
cat > "$base/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$RABBITMQ_NODE_PORT
loopback_users = none
log.file.level = warning
log.console = false
management.tcp.ip = 127.0.0.1
management.tcp.port = ${RABBITMQ_MGMT_PORT:-15672}
vm_memory_high_watermark.relative = 0.4
disk_free_limit.absolute = 200MB
CONF

rmq=/usr/lib/rabbitmq/bin
export PATH="$rmq:$PATH"   # the /usr/sbin wrappers su to the rabbitmq user; run the node as us

case "${1:-start}" in
  start)
    if ! rabbitmqctl -q status >/dev/null 2>&1; then
      rabbitmq-server -detached >"$root/var/log/rabbitmq-start.log" 2>&1
      rabbitmqctl -q wait --timeout 120 "$RABBITMQ_PID_FILE"
    fi
    # one user per service, allowed only its own exchange and queues (deploy/rabbitmq/
    # access.py); passwords generated on first start, kept under var/secrets, never in git.
    # guest stays here only: local development and the tests' per-test vhosts use it.
    # --prune-queues: the queues of handlers this checkout's services no longer have go.
    secrets="$root/var/secrets/rabbitmq"
    (umask 077; mkdir -p "$secrets"
     for svc in leads deals quotes support metrics notify webhooks; do
       [ -s "$secrets/$svc.password" ] || python3 -c \
         'import secrets; print(secrets.token_urlsafe(24))' > "$secrets/$svc.password"
     done)
    RABBITMQ_ADMIN_USER=guest RABBITMQ_ADMIN_PASSWORD=guest python3 \
      "$root/deploy/rabbitmq/access.py" --api "http://127.0.0.1:${RABBITMQ_MGMT_PORT:-15672}" \
      --vhost / --password-dir "$secrets" --prune-queues >/dev/null
    echo "rabbitmq: running on 127.0.0.1:$RABBITMQ_NODE_PORT" ;;
  stop)
    # only a running node is stopped: `rabbitmqctl stop <pidfile>` waits for the pid in the
    # file to exit, and a stale file's pid may by now belong to another process
    if rabbitmqctl -q status >/dev/null 2>&1; then
      timeout 120 rabbitmqctl -q stop "$RABBITMQ_PID_FILE" 2>/dev/null || true
    fi
    rm -f "$RABBITMQ_PID_FILE" ;;
  status)
    rabbitmqctl -q status >/dev/null 2>&1 ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
