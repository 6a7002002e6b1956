// Command ferretdb runs FerretDB v1 embedded, on SQLite, for local development and CI.
//
// It wraps the embeddable github.com/FerretDB/FerretDB/ferretdb package rather than
// `go install`ing cmd/ferretdb: the latter panics at start-up when built outside
// FerretDB's own repository (build/version/version.txt is empty in the module zip).
// The embedded package never creates a telemetry reporter and locks telemetry off.
// FerretDB listens on a Unix socket; clients reach it on TCP through serialize.go.
package main

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // only served when -pprof-addr is given
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite directory URI (must end with /)")
	level := flag.String("log-level", "warn", "debug, info, warn or error")
	pprofAddr := flag.String("pprof-addr", "", "serve Go's profiles here (profiling a bench)")
	flag.Parse()
	*sqliteURL = withDefaultPragmas(*sqliteURL)

	if *pprofAddr != "" {
		go func() { _ = http.ListenAndServe(*pprofAddr, nil) }()
	}

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		lvl = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	dir, _, _ := strings.Cut(strings.TrimPrefix(*sqliteURL, "file:"), "?")
	dir = strings.TrimSuffix(dir, "/")
	socket := filepath.Join(dir, "ferretdb.sock")
	os.Remove(socket)

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{Unix: socket},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: *sqliteURL,
	})
	if err != nil {
		logger.Error("start", "error", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		if err := f.Run(ctx); err != nil && ctx.Err() == nil {
			logger.Error("run", "error", err)
			os.Exit(1)
		}
	}()
	for i := 0; i < 200; i++ { // wait for the embedded listener
		if c, err := net.Dial("unix", socket); err == nil {
			c.Close()
			break
		}
		time.Sleep(25 * time.Millisecond)
	}

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		logger.Error("listen", "error", err)
		os.Exit(1)
	}
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	s := &serializer{backend: socket, ids: newIDIndexer(dir), log: logger}

	if err := s.serve(l); err != nil && ctx.Err() == nil {
		logger.Error("serve", "error", err)
		os.Exit(1)
	}
}

// withDefaultPragmas adds our SQLite settings to the URL unless it sets them itself
// (modernc's driver runs each `_pragma` on every connection it opens).
// temp_store(memory): a write inside a transaction keeps the pages it may have to undo in
// a statement journal; on files, that journal went to a temporary file once it passed
// 64 KB, which an update of a lead (15 expression indexes) always does: an open, writes
// and a close per write, ~20 % of FerretDB's CPU per update (bench.ferret_cpu). In memory
// it is the same undo record, gone with the statement; durability is the WAL's, unchanged.
func withDefaultPragmas(u string) string {
	for _, p := range []string{"temp_store(memory)"} {
		name, _, _ := strings.Cut(p, "(")
		if strings.Contains(u, "_pragma="+name) {
			continue
		}
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "_pragma=" + p
	}
	return u
}
