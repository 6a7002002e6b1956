"""Move aside the database files FerretDB v1 cannot open, before it starts.

A process killed while FerretDB creates a database can leave `<db>.sqlite` without any
table. FerretDB then refuses to start at all ("no such table: _ferretdb_collections"), so
one test database killed at the wrong moment stops `make run` and `make test`. Such a file
holds no collection, hence no data: it is moved (with its -wal and -shm) to
`var/ferretdb-orphans/`, never deleted. usage: ferretdb_orphans.py DATA_DIR ORPHANS_DIR
"""
import sqlite3
import sys
import time
from pathlib import Path


def tableless(data_dir):
    """The database files in `data_dir` that have no table at all."""
    found = []
    for path in sorted(Path(data_dir).glob("*.sqlite")):
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                tables = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        except sqlite3.DatabaseError:
            continue  # not ours to judge: FerretDB reports it
        if tables == 0:
            found.append(path)
    return found


def move_aside(data_dir, orphans_dir):
    moved = []
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for path in tableless(data_dir):
        Path(orphans_dir).mkdir(parents=True, exist_ok=True)
        for part in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if part.exists():
                part.rename(Path(orphans_dir) / f"{part.name}.{stamp}")
        moved.append(path.name)
    return moved


if __name__ == "__main__":
    for name in move_aside(sys.argv[1], sys.argv[2]):
        print(f"ferretdb: {name} has no table (a creation cut short); moved to {sys.argv[2]}",
              file=sys.stderr)
