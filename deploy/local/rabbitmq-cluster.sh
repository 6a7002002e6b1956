#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine (Debian's package, no systemd), for trying
# quorum queues and node failures locally. Each node has its own name, AMQP and
# distribution ports, and its data and logs under var/cluster/<node>/; the nodes share one
# Erlang cookie (var/cluster/.erlang.cookie) and are joined with `rabbitmqctl join_cluster`.
# It leaves the single node of `make run` (5672, 25672) alone.
#
# usage: rabbitmq-cluster.sh start|stop|status|uri [VHOST]
#        rabbitmq-cluster.sh kill NODE     (kill -9 of the node's Erlang VM)
#        rabbitmq-cluster.sh start-node NODE  (start one node again; it rejoins by itself)
# RABBITMQ_CLUSTER_PORT (5681): node N listens on PORT+N-1, distribution on 20000 more.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
base="$root/var/cluster"
port0="${RABBITMQ_CLUSTER_PORT:-5681}"
NODES=(c1 c2 c3)
rmq=/usr/lib/rabbitmq/bin
export PATH="$rmq:$PATH"   # the /usr/sbin wrappers su to the rabbitmq user; run nodes as us
export HOME="$base"        # the shared Erlang cookie lives in $HOME, for nodes and CLI alike
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_CONF_ENV_FILE=/dev/null   # nothing from /etc/rabbitmq

nodename() { echo "dealflow-$1@localhost"; }
index() { local i; for i in "${!NODES[@]}"; do [ "${NODES[$i]}" = "$1" ] && { echo "$i"; return; }; done
          echo "unknown node $1 (one of ${NODES[*]})" >&2; exit 2; }

# the environment of one node (and of the CLI talking to it)
node_env() {
  local node=$1 i; i=$(index "$node")
  local dir="$base/$node"
  export RABBITMQ_NODENAME; RABBITMQ_NODENAME=$(nodename "$node")
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=$((port0 + i))
  export RABBITMQ_DIST_PORT=$((port0 + i + 20000))
  export RABBITMQ_MNESIA_BASE="$dir/data"
  export RABBITMQ_LOG_BASE="$dir/log"
  export RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
  export RABBITMQ_CONFIG_FILE="$dir/rabbitmq"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
  # Small and quiet, for a 2-core machine shared with other work: one scheduler of each
  # kind, no busy-waiting schedulers, the allocator strategy that returns memory soonest,
  # small carriers; distribution on loopback only.
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} \
+S 1:1 +SDcpu 1:1 +SDio 2 +sbwt none +sbwtdcpu none +sbwtdio none \
+MBas ageffcbf +MHas ageffcbf +MBlmbcs 512 +MHlmbcs 512 +MMmcs 30 +P 65536"
}

write_config() {
  local node=$1 dir="$base/$1"
  mkdir -p "$dir/data" "$dir/log"
  echo '[].' > "$RABBITMQ_ENABLED_PLUGINS_FILE"   # no plugins: AMQP 0-9-1 and the CLI only
  echo '[].' > "$RABBITMQ_ADVANCED_CONFIG_FILE"
  cat > "$dir/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$RABBITMQ_NODE_PORT
loopback_users = none
log.file.level = warning
log.console = false
vm_memory_high_watermark.absolute = ${RABBITMQ_CLUSTER_MEMORY:-384MB}
disk_free_limit.absolute = 100MB
CONF
}

cookie() {
  mkdir -p "$base"
  if [ ! -s "$base/.erlang.cookie" ]; then
    (umask 077; python3 -c 'import secrets; print(secrets.token_hex(20), end="")' \
      > "$base/.erlang.cookie")
  fi
  chmod 400 "$base/.erlang.cookie"
}

running() { (node_env "$1"; rabbitmqctl -q -n "$RABBITMQ_NODENAME" ping >/dev/null 2>&1); }

start_node() {
  local node=$1
  ( node_env "$node"
    running "$node" && exit 0
    write_config "$node"
    rm -f "$RABBITMQ_PID_FILE"
    rabbitmq-server -detached >"$base/$node/log/start.log" 2>&1
    rabbitmqctl -q -n "$RABBITMQ_NODENAME" wait --timeout 120 "$RABBITMQ_PID_FILE" )
}

member_of_c1() {
  ( node_env "$1"
    rabbitmqctl -q -n "$RABBITMQ_NODENAME" cluster_status --formatter json 2>/dev/null |
      python3 -c 'import json, sys; s = json.load(sys.stdin); sys.exit(sys.argv[1] not in s["disk_nodes"])' \
        "$(nodename c1)" )
}

join() {
  local node=$1
  member_of_c1 "$node" && return 0
  ( node_env "$node"
    # (the CLI prints the joining node's boot warnings; they go to its log)
    { rabbitmqctl -q -n "$RABBITMQ_NODENAME" stop_app
      rabbitmqctl -q -n "$RABBITMQ_NODENAME" reset
      rabbitmqctl -q -n "$RABBITMQ_NODENAME" join_cluster "$(nodename c1)"
      rabbitmqctl -q -n "$RABBITMQ_NODENAME" start_app; } 2>>"$base/$node/log/start.log" )
}

os_pid() { cat "$base/$1/rabbitmq.pid" 2>/dev/null || true; }

case "${1:-start}" in
  start)
    cookie
    # the nodes boot in parallel (most of the time is the Erlang VM and rabbit booting);
    # nodes that were stopped together wait for each other, so they also come back together
    pids=(); for node in "${NODES[@]}"; do start_node "$node" & pids+=($!); done
    for pid in "${pids[@]}"; do wait "$pid"; done
    for node in "${NODES[@]:1}"; do join "$node"; done
    echo "rabbitmq cluster: ${NODES[*]} on 127.0.0.1:$port0-$((port0 + ${#NODES[@]} - 1))" ;;
  stop)
    pids=()
    for node in "${NODES[@]}"; do
      ( node_env "$node"
        # only a running node is stopped: a stale pid file's pid may belong to another process
        if running "$node"; then
          timeout 120 rabbitmqctl -q -n "$RABBITMQ_NODENAME" stop "$RABBITMQ_PID_FILE" >/dev/null || true
        fi
        rm -f "$RABBITMQ_PID_FILE" ) & pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid"; done ;;
  status)
    for node in "${NODES[@]}"; do running "$node" || { echo "$node: down"; exit 1; }; done
    (node_env c1; rabbitmqctl -q -n "$RABBITMQ_NODENAME" cluster_status) ;;
  uri)
    # AMQP_URI for the services: every node, in kombu's failover form
    vhost="${2:-}"; uris=()
    for i in "${!NODES[@]}"; do uris+=("amqp://guest:guest@127.0.0.1:$((port0 + i))/$vhost"); done
    (IFS=';'; echo "${uris[*]}") ;;
  kill)
    node=${2:?node}; index "$node" >/dev/null
    pid=$(os_pid "$node")
    if [ -n "$pid" ] && running "$node"; then kill -9 "$pid"; fi ;;
  start-node)
    node=${2:?node}; cookie; start_node "$node" ;;
  ctl)
    # rabbitmqctl against one node: rabbitmq-cluster.sh ctl c2 list_queues
    node=${2:?node}; shift 2; (node_env "$node"; rabbitmqctl -n "$RABBITMQ_NODENAME" "$@") ;;
  *) echo "usage: $0 start|stop|status|uri [VHOST]|kill NODE|start-node NODE|ctl NODE ARGS" >&2
     exit 2 ;;
esac
