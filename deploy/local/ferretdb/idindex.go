package main

// FerretDB v1.24's SQLite backend indexes `_id` as `_ferretdb_sjson->"_id"` but queried it
// as `_ferretdb_sjson->'$._id'`; SQLite matches index expressions by their parsed form, so
// no lookup by _id used the index and every find, update or findAndModify by _id scanned
// the whole collection (168 updates/s at 2,000 documents, falling as the table grew).
// Earlier builds added, to every collection table, an index on the expression the
// queries used (`<table>__id_path`). The queries now use the unique index's own expression
// (id-pushdown.patch, metadata.go), so that second index only cost every write one more
// index to maintain: this drops it from the tables of databases those builds made.
//
// It runs inside the database's write turn (serialize.go), right after a write command's
// reply, so a table is looked at once, from the first write into it, and no
// dropDatabase can delete the file under our connection (a mapped WAL index that vanishes
// is a SIGBUS). Turns of different databases run side by side: mu guards the maps.

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"sync"

	_ "modernc.org/sqlite"
)

var dbName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

type idIndexer struct {
	mu      sync.Mutex
	dir     string
	conns   map[string]*sql.DB
	indexed map[string]map[string]bool // database -> tables without the old extra index
}

func newIDIndexer(dir string) *idIndexer {
	return &idIndexer{dir: dir, conns: map[string]*sql.DB{}, indexed: map[string]map[string]bool{}}
}

// forget closes our connection before FerretDB deletes the database file.
func (x *idIndexer) forget(db string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.forgetLocked(db)
}

func (x *idIndexer) forgetLocked(db string) {
	if c, ok := x.conns[db]; ok {
		c.Close()
		delete(x.conns, db)
	}
	delete(x.indexed, db)
}

// ensure drops the old extra index from every collection table of db not looked at yet.
func (x *idIndexer) ensure(ctx context.Context, db string) error {
	if !dbName.MatchString(db) {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	conn, ok := x.conns[db]
	if !ok {
		var err error
		// mode=rw: never create a file FerretDB did not make
		conn, err = sql.Open("sqlite",
			"file:"+filepath.Join(x.dir, db+".sqlite")+"?mode=rw&_pragma=busy_timeout(5000)")
		if err != nil {
			return err
		}
		conn.SetMaxOpenConns(1)
		x.conns[db] = conn
		x.indexed[db] = map[string]bool{}
	}
	rows, err := conn.QueryContext(ctx, `SELECT table_name FROM _ferretdb_collections`)
	if err != nil {
		x.forgetLocked(db) // not created yet, or gone
		return err
	}
	current := map[string]bool{}
	for rows.Next() {
		var t string
		if rows.Scan(&t) == nil {
			current[t] = true
		}
	}
	rows.Close()
	done := x.indexed[db]
	for t := range done {
		if !current[t] {
			delete(done, t) // dropped: a new table of that name needs the index again
		}
	}
	for t := range current {
		if done[t] {
			continue
		}
		q := fmt.Sprintf(`DROP INDEX IF EXISTS %q`, t+"__id_path")
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return err
		}
		done[t] = true
	}
	return nil
}
