#!/usr/bin/env bash
# Local Prometheus (Debian's package) scraping the services on 127.0.0.1:8001-8005, with the
# same rules as deploy/. usage: prometheus.sh start|stop
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data="$root/var/prometheus"; pidfile="$data/prometheus.pid"
port="${PROMETHEUS_PORT:-9090}"
# a pid file can outlive its process, and the pid be reused: check what runs under it
running() { [ -f "$pidfile" ] && grep -qa "prometheus" "/proc/$(cat "$pidfile")/cmdline" 2>/dev/null; }

case "${1:-start}" in
  start)
    if running; then echo "prometheus: already running"; exit 0; fi
    mkdir -p "$data" "$root/var/log"
    nohup prometheus --config.file="$root/deploy/prometheus/prometheus.local.yml" \
      --storage.tsdb.path="$data" --web.listen-address="127.0.0.1:$port" \
      >>"$root/var/log/prometheus.log" 2>&1 &
    echo $! > "$pidfile"
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "prometheus: http://127.0.0.1:$port"; exit 0; fi
      sleep 0.1
    done
    echo "prometheus did not start; see var/log/prometheus.log" >&2; exit 1 ;;
  stop)
    if running; then kill "$(cat "$pidfile")"; rm -f "$pidfile"; fi ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
