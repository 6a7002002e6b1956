#!/usr/bin/env bash
# Local FerretDB v1 (MongoDB wire protocol on SQLite), built from the Go module proxy.
# usage: ferretdb.sh build|start|stop
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
src="$root/deploy/local/ferretdb"   # our tiny module embedding FerretDB (version pinned in go.mod)
bin="$root/var/bin/ferretdb"
data="$root/var/ferretdb"
pidfile="$data/ferretdb.pid"
port="${FERRETDB_PORT:-27017}"
export DO_NOT_TRACK=1 GOFLAGS=-buildvcs=false

# a pid file can outlive its process, and the pid be reused: check what runs under it
running() { [ -f "$pidfile" ] && grep -qa "var/bin/ferretdb" "/proc/$(cat "$pidfile")/cmdline" 2>/dev/null; }

build() {
  # rebuild only when our module changed; Go's module and build caches make a rebuild cheap
  if [ -x "$bin" ] && [ -z "$(find "$src" -newer "$bin" -type f)" ]; then return 0; fi
  # FerretDB's source from the module proxy, with our small patch (id-pushdown.patch:
  # look documents up by their _id index whenever a filter names one _id)
  work="$root/var/build/ferretdb"
  rm -rf "$work" && mkdir -p "$work" "$root/var/bin"
  (cd "$src" && go mod download github.com/FerretDB/FerretDB)
  mod=$(cd "$src" && go list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB)
  cp -r "$mod" "$work/FerretDB" && chmod -R u+w "$work/FerretDB"
  patch -s -p1 -d "$work/FerretDB" < "$src/id-pushdown.patch"
  # pushdown.patch: filters, and with exact filters sorts and limits, as SQL on the indexes
  patch -s -p1 -d "$work/FerretDB" < "$src/pushdown.patch"
  # liveness.patch: no query or cursor can hold the connection a write waits for
  patch -s -p1 -d "$work/FerretDB" < "$src/liveness.patch"
  # bulk.patch: one SQLite transaction per bulk insert, update or delete, not per statement
  patch -s -p1 -d "$work/FerretDB" < "$src/bulk.patch"
  # debuglog.patch: SQL statements are formatted for the debug log only when it is on
  patch -s -p1 -d "$work/FerretDB" < "$src/debuglog.patch"
  # sjson-decode.patch: stored documents decoded in one pass, not once per nesting level
  patch -s -p1 -d "$work/FerretDB" < "$src/sjson-decode.patch"
  # resource-track.patch: leak tracking (a stack capture per query) in debug builds only
  patch -s -p1 -d "$work/FerretDB" < "$src/resource-track.patch"
  # sqlite-stmtcache.patch (on the modernc SQLite driver FerretDB uses, from the same
  # module cache): each connection keeps its statements compiled, by SQL text, instead of
  # compiling them for every run. The module is linked file by file (it is mostly its
  # 200 MB of generated C), the patched file copied.
  (cd "$src" && go mod download modernc.org/sqlite)
  smod=$(cd "$src" && go list -m -f '{{.Dir}}' modernc.org/sqlite)
  cp -rs "$smod" "$work/sqlite" && chmod -R u+w "$work/sqlite"
  cp --remove-destination "$smod/sqlite.go" "$work/sqlite/sqlite.go" && chmod u+w "$work/sqlite/sqlite.go"
  patch -s -p1 -d "$work/sqlite" < "$src/sqlite-stmtcache.patch"
  # libc-memfast.patch (modernc's libc, the C library that SQLite's Go translation calls):
  # memcmp and memcpy as word compares and Go's copy instead of byte loops
  (cd "$src" && go mod download modernc.org/libc)
  lmod=$(cd "$src" && go list -m -f '{{.Dir}}' modernc.org/libc)
  cp -rs "$lmod" "$work/libc" && chmod -R u+w "$work/libc"
  cp --remove-destination "$lmod/ccgo_linux_amd64.go" "$work/libc/" && chmod u+w "$work/libc/ccgo_linux_amd64.go"
  patch -s -p1 -d "$work/libc" < "$src/libc-memfast.patch"
  cp "$src/go.mod" "$src/go.sum" "$work/"
  (cd "$src" && go mod edit -modfile="$work/go.mod" \
     -replace "github.com/FerretDB/FerretDB=$work/FerretDB" \
     -replace "modernc.org/sqlite=$work/sqlite" \
     -replace "modernc.org/libc=$work/libc" \
   && go build -modfile="$work/go.mod" -trimpath -o "$bin.tmp" . && mv "$bin.tmp" "$bin")
}

case "${1:-start}" in
  build) build ;;
  start)
    if running; then echo "ferretdb: already running"; exit 0; fi
    build
    mkdir -p "$data" "$root/var/log"
    # a database file a kill left without tables would stop FerretDB from starting at all
    python3 "$root/deploy/local/ferretdb_orphans.py" "$data" "$root/var/ferretdb-orphans"
    # WAL with synchronous=normal: no fsync per commit (a power cut may lose the last
    # commits, never corrupt); this is a development and CI server.
    # GOGC=400 (FERRETDB_GOGC): Go's collector at its default (100) took about a fifth of
    # FerretDB's CPU under the seed's writes, whose garbage is short-lived decoded documents;
    # at 400 FerretDB used 18 % less CPU for the same 20,000 leads (peak RSS 223 MB; 1000
    # saved no more and peaked at 384 MB). README, local infrastructure notes.
    GOGC="${FERRETDB_GOGC:-400}" nohup "$bin" -sqlite-url="file:$data/?_pragma=synchronous(normal)" -listen-addr="127.0.0.1:$port" -log-level=error \
      >>"$root/var/log/ferretdb.log" 2>&1 &
    echo $! > "$pidfile"
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "ferretdb: running on 127.0.0.1:$port"; exit 0; fi
      sleep 0.1
    done
    echo "ferretdb: did not start; see var/log/ferretdb.log" >&2; exit 1 ;;
  stop)
    if running; then kill "$(cat "$pidfile")"; rm -f "$pidfile"; fi ;;
  *) echo "usage: $0 build|start|stop" >&2; exit 2 ;;
esac
