"""deploy/local/ferretdb_orphans.py on real SQLite files: a database file left without
tables (FerretDB refuses to start beside one) is moved aside; one with data never is."""
import importlib.util
import sqlite3
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "ferretdb_orphans", ROOT / "deploy/local/ferretdb_orphans.py")
orphans = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(orphans)


def _database(path, table):
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")  # as FerretDB opens them: a header, no table
    if table:
        conn.execute("CREATE TABLE _ferretdb_collections (name TEXT)")
        conn.execute("INSERT INTO _ferretdb_collections VALUES ('leads')")
    conn.commit()
    conn.close()


def test_a_tableless_database_is_moved_aside_with_its_wal_and_one_with_tables_stays(tmp_path):
    data, aside = tmp_path / "ferretdb", tmp_path / "orphans"
    data.mkdir()
    _database(data / "cut_short.sqlite", table=False)
    (data / "cut_short.sqlite-wal").write_bytes(b"")
    _database(data / "dealflow.sqlite", table=True)
    assert [p.name for p in orphans.tableless(data)] == ["cut_short.sqlite"]

    assert orphans.move_aside(data, aside) == ["cut_short.sqlite"]
    assert not any(p.name.startswith("cut_short") for p in data.iterdir())
    assert (data / "dealflow.sqlite").exists()
    assert {p.name.rsplit(".", 1)[0] for p in aside.iterdir()} >= {
        "cut_short.sqlite", "cut_short.sqlite-wal"}
    assert orphans.move_aside(data, aside) == []  # nothing more to move


def test_a_file_that_is_no_database_is_left_for_ferretdb_to_report(tmp_path):
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all, " * 100)
    assert orphans.tableless(tmp_path) == []
