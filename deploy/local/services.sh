#!/usr/bin/env bash
# Start, stop or list the Dealflow services as separate `nameko run` processes.
# usage: services.sh start|stop|status SERVICE...
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
run="$root/var/run"; logs="$root/var/log"
mkdir -p "$run" "$logs"
export PYTHONPATH="$root/services" EVENTLET_NO_GREENDNS=yes
export PYTHONWARNINGS="ignore::DeprecationWarning,ignore::UserWarning"
# security is on locally too: the key pair `make keys` created and the local directory
export AUTH_PUBLIC_KEY_FILE="${AUTH_PUBLIC_KEY_FILE:-$root/var/auth/public.pem}"
export PEOPLE_FILE="${PEOPLE_FILE:-$root/deploy/local/people.yml}"
# notify's look-ups of customers and links: it signs its own short-lived integration token
# with the local identity provider's key (development only; see services/notify/config.yml)
export NOTIFY_LOOKUP_SIGNING_KEY_FILE="${NOTIFY_LOOKUP_SIGNING_KEY_FILE:-$root/var/auth/private.pem}"
action="$1"; shift

port_of() { case "$1" in leads) echo 8001;; deals) echo 8002;; quotes) echo 8003;;
  support) echo 8004;; metrics) echo 8005;; notify) echo 8006;;
  webhooks) echo 8007;; *) echo "unknown service $1" >&2; exit 2;; esac; }
# each service on its own broker user (rabbitmq.sh made it), unless AMQP_URI names another
amqp_uri_of() {
  if [ -n "${AMQP_URI:-}" ]; then echo "$AMQP_URI"; return; fi
  echo "amqp://$1:$(cat "$root/var/secrets/rabbitmq/$1.password")@127.0.0.1:${RABBITMQ_NODE_PORT:-5672}/"
}
# webhooks to receivers on this machine: plain http and loopback (never outside development)
export WEBHOOKS_DEVELOPMENT="${WEBHOOKS_DEVELOPMENT:-true}"
export WEBHOOKS_ALLOW="${WEBHOOKS_ALLOW:-[localhost, 127.0.0.1]}"
# signed customer links: a key generated under var/links on first use (kit.links)
export LINK_KEYS_DEV_DIR="${LINK_KEYS_DEV_DIR:-$root/var/links}"
# webhook secrets are stored sealed: a key generated under var/webhook-seal on first use
export WEBHOOK_SEAL_KEYS_DEV_DIR="${WEBHOOK_SEAL_KEYS_DEV_DIR:-$root/var/webhook-seal}"
class_of() { echo "$1.service:$(tr '[:lower:]' '[:upper:]' <<<"${1:0:1}")${1:1}Service"; }
# a pid file can outlive its process, and the pid be reused: check what runs under it
alive() { [ -f "$run/$1.pid" ] && grep -qa "services/$1/config.yml" \
  "/proc/$(cat "$run/$1.pid")/cmdline" 2>/dev/null; }
ready() { python3 - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}

case "$action" in
  start)
    for s in "$@"; do
      if alive "$s"; then continue; fi
      AMQP_URI="$(amqp_uri_of "$s")" WEB_SERVER_ADDRESS="127.0.0.1:$(port_of "$s")" nohup "$root/.venv/bin/nameko" run \
        --config "$root/services/$s/config.yml" "$(class_of "$s")" >>"$logs/$s.log" 2>&1 &
      echo $! > "$run/$s.pid"
    done
    for s in "$@"; do
      port=$(port_of "$s")
      for _ in $(seq 1 150); do
        ready "$port" && break
        alive "$s" || { echo "$s exited; see var/log/$s.log" >&2; tail -5 "$logs/$s.log" >&2; exit 1; }
        sleep 0.2
      done
      ready "$port" || { echo "$s not ready; see var/log/$s.log" >&2; exit 1; }
    done
    printf '\n%-9s %-30s %-35s %s\n' SERVICE API OPENAPI METRICS
    for s in "$@"; do
      p=$(port_of "$s")
      printf '%-9s %-30s %-35s %s\n' "$s" "http://127.0.0.1:$p/api/v1" \
        "http://127.0.0.1:$p/openapi.json" "http://127.0.0.1:$p/metrics"
    done
    echo; echo "logs: var/log/<service>.log    stop: make stop" ;;
  stop)
    for s in "$@"; do
      if alive "$s"; then
        pid=$(cat "$run/$s.pid"); kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
      fi
      rm -f "$run/$s.pid"
    done ;;
  status)
    for s in "$@"; do
      if alive "$s"; then
        state=$(ready "$(port_of "$s")" && echo ready || echo "not ready")
      else state=stopped; fi
      printf '%-9s %s\n' "$s" "$state"
    done ;;
  *) echo "usage: $0 start|stop|status SERVICE..." >&2; exit 2 ;;
esac
