#!/usr/bin/env bash
# Local SMTP server with an inbox and a REST API (Mailpit), built from the Go module proxy.
# The notify service sends its mail here; people read it at the inbox's API.
# usage: mailpit.sh build|start|stop|address
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version="v1.33.1"
bin="$root/var/bin/mailpit"
data="$root/var/mailpit"
pidfile="$data/mailpit.pid"
smtp_port="${MAILPIT_SMTP_PORT:-1025}"
http_port="${MAILPIT_HTTP_PORT:-8025}"
export DO_NOT_TRACK=1 GOFLAGS=-buildvcs=false

running() { [ -f "$pidfile" ] && grep -qa "var/bin/mailpit" "/proc/$(cat "$pidfile")/cmdline" 2>/dev/null; }

build() {
  # the version is part of the file name's stamp: a new pin rebuilds
  if [ -x "$bin" ] && [ "$(cat "$bin.version" 2>/dev/null)" = "$version" ]; then return 0; fi
  mkdir -p "$root/var/bin"
  # The module ships no built web-UI bundle: its inbox page is a shell, the API is complete.
  GOBIN="$root/var/bin" go install "github.com/axllent/mailpit@$version"
  echo "$version" > "$bin.version"
}

address() {
  echo "inbox: http://127.0.0.1:$http_port/api/v1/messages (SMTP 127.0.0.1:$smtp_port)"
}

case "${1:-start}" in
  build) build ;;
  start)
    if running; then address; exit 0; fi
    build
    mkdir -p "$data" "$root/var/log"
    # --disable-version-check: Mailpit would otherwise ask GitHub for its latest release;
    # --max: Mailpit keeps 500 messages by default and silently prunes the oldest, which a
    # 30-minute `make soak` passes (its inbox counts then read as lost mail); 0 keeps all
    nohup "$bin" --disable-version-check --smtp "127.0.0.1:$smtp_port" \
      --listen "127.0.0.1:$http_port" --database "$data/mailpit.db" \
      --max "${MAILPIT_MAX_MESSAGES:-0}" \
      --smtp-auth-accept-any --smtp-auth-allow-insecure --quiet \
      >>"$root/var/log/mailpit.log" 2>&1 &
    echo $! > "$pidfile"
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$http_port") 2>/dev/null; then address; exit 0; fi
      sleep 0.1
    done
    echo "mailpit: did not start; see var/log/mailpit.log" >&2; exit 1 ;;
  stop)
    if running; then kill "$(cat "$pidfile")"; rm -f "$pidfile"; fi ;;
  address) address ;;
  *) echo "usage: $0 build|start|stop|address" >&2; exit 2 ;;
esac
