#!/usr/bin/env bash
# kustomize, built from the Go module proxy into var/bin (once per pinned version): the
# tests render deploy/k8s/ with it, offline, and validate what it renders.
# usage: kustomize.sh build
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
version="v5.8.1"
bin="$root/var/bin/kustomize"
export DO_NOT_TRACK=1 GOFLAGS=-buildvcs=false

case "${1:-build}" in
  build)
    if [ -x "$bin" ] && [ "$(cat "$bin.version" 2>/dev/null)" = "$version" ]; then exit 0; fi
    mkdir -p "$root/var/bin"
    GOBIN="$root/var/bin" go install "sigs.k8s.io/kustomize/kustomize/v5@$version"
    echo "$version" > "$bin.version" ;;
  *) echo "usage: $0 build" >&2; exit 2 ;;
esac
