"""The index check itself (tests/support/queryplans.py): it sees a scan where there is one,
an index where there is one, and records only what the services send."""
import datetime as dt

from kit.outbox import OutboxRelay
from tests.support.queryplans import RECORDER, scans

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def test_an_unindexed_filter_is_a_scan_and_an_indexed_one_is_not(mongo_db):
    mongo_db.things.create_index("owner_id")
    mongo_db.things.create_index([("owner_id", 1), ("created_at", -1), ("_id", -1)])
    mongo_db.things.insert_many([{"_id": f"t{i}", "owner_id": f"r{i % 3}", "colour": "red",
                                  "created_at": NOW} for i in range(30)])
    assert scans(mongo_db, "things", {"colour": "red"}, None)
    assert not scans(mongo_db, "things", {"owner_id": "r1"}, None)
    assert not scans(mongo_db, "things", {"owner_id": "r1"},
                     {"created_at": -1, "_id": -1, "$limit": 20})


def test_a_look_up_by_id_uses_an_index(mongo_db):
    """Reads, updates and find-and-modifies by `_id` are most of what the services send,
    and the check leaves them out: on FerretDB their SQL names `_id` as the unique index
    does (deploy/local/ferretdb/id-pushdown.patch), or every one of them would scan."""
    mongo_db.things.insert_many([{"_id": f"t{i}", "n": i} for i in range(30)])
    assert not scans(mongo_db, "things", {"_id": "t7"}, None)
    assert not scans(mongo_db, "things", {"_id": {"$in": ["t7", "t9"]}}, None)
    assert not scans(mongo_db, "things", {"_id": "t7", "n": 7}, None)


def test_only_the_services_queries_are_recorded(mongo_db):
    mongo_db.things.insert_one({"_id": "x", "outbox_since": NOW})
    RECORDER.take()
    RECORDER.recording = True
    try:
        mongo_db.things.find_one({"colour": "red"})           # the test's own look-up
        OutboxRelay(mongo_db, ["things"], publisher=None).oldest_pending()  # a service's
        seen = RECORDER.take()
    finally:
        RECORDER.recording = False
    assert [(caller, query[0]) for _, caller, query in seen] == [
        ("kit/outbox.py:oldest_pending", "things")]
