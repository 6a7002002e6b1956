package main

// FerretDB v1.24's SQLite backend indexes `_id` as `_ferretdb_sjson->"_id"` but queries it
// as `_ferretdb_sjson->'$._id'`; SQLite matches index expressions by their text, so no
// lookup by _id ever uses the index and every find, update or findAndModify by _id scans
// the whole collection (168 updates/s at 2,000 documents, falling as the table grows).
// This adds, to every collection table, an index on the expression the queries use.
//
// It holds the serializer's write turn while it has a database file open: a dropDatabase
// deletes the file, and a mapped WAL index that vanishes under an open connection is a
// SIGBUS for the whole process.

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite"
)

func indexIDs(ctx context.Context, dir string, writes *sync.Mutex, logger *slog.Logger) {
	seen := map[string]time.Time{} // file -> modification time when last indexed
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
		for _, file := range files {
			info, err := os.Stat(file)
			if err != nil || seen[file].Equal(info.ModTime()) {
				continue
			}
			writes.Lock()
			// the file may have been dropped while we waited for the turn
			if _, err := os.Stat(file); err == nil {
				err = indexFile(ctx, file)
				if err != nil {
					logger.Debug("id index", "file", file, "error", err)
				} else {
					seen[file] = info.ModTime()
				}
			}
			writes.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func indexFile(ctx context.Context, file string) error {
	// mode=rw: never create a file FerretDB did not make
	db, err := sql.Open("sqlite", "file:"+file+"?mode=rw&_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM _ferretdb_collections`)
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if rows.Scan(&t) == nil {
			tables = append(tables, t)
		}
	}
	rows.Close()
	for _, t := range tables {
		var n int
		err := db.QueryRowContext(ctx,
			`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?`,
			t+"__id_path").Scan(&n)
		if err != nil || n > 0 {
			continue
		}
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`,
			t+"__id_path", t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
