"""Where a migration's next batch starts (kit.migrations.Migration.batch): after the last
`_id`, or after the last (walked field, `_id`), past documents without the field."""
import datetime as dt

import pytest

from kit.migrations import Migration

T = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
FLOOR = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
BY_ID = Migration("m", "c", ("a",), lambda doc: None)
WALKED = BY_ID._replace(walk="created_at", floor=FLOOR)


@pytest.mark.parametrize("migration, last, query, order", [
    (BY_ID, None, {}, [("_id", 1)]),
    (BY_ID, "x", {"_id": {"$gt": "x"}}, [("_id", 1)]),
    (WALKED, None, {}, [("created_at", 1), ("_id", 1)]),
    (WALKED, [T, "x"], {"$or": [{"created_at": {"$gt": T}},
                                {"created_at": T, "_id": {"$gt": "x"}}]},
     [("created_at", 1), ("_id", 1)]),
    (WALKED, [None, "x"], {"$or": [{"created_at": {"$gte": FLOOR}},
                                   {"created_at": None, "_id": {"$gt": "x"}}]},
     [("created_at", 1), ("_id", 1)]),
])
def test_the_next_batch(migration, last, query, order):
    assert migration.batch(last) == (query, order)


@pytest.mark.parametrize("migration, doc, position", [
    (BY_ID, {"_id": "x", "created_at": T}, "x"),
    (WALKED, {"_id": "x", "created_at": T}, [T, "x"]),
    (WALKED, {"_id": "x"}, [None, "x"]),
])
def test_the_position_a_batch_ends_at(migration, doc, position):
    assert migration.position(doc) == position
