"""kit.buckets: an entity's log numbered in its own write, copied into bounded buckets."""
import datetime as dt

from kit.buckets import SEQ, BucketLog
from kit.outbox import SINCE

NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)


def log(**options):
    return BucketLog("history", "deal_history", **{"size": 4, "recent": 2, **options})


def written(doc, update):
    """The document after `update` ($set only is what append writes)."""
    return {**doc, **update["$set"]}


def test_entries_are_numbered_after_the_last_and_the_entity_keeps_what_is_not_copied():
    history = log()
    doc = history.start({"_id": "d", "history": [{"to": "a"}]})
    assert doc["history"] == [{"to": "a", SEQ: 1}]
    assert (doc["history_count"], doc["history_flushed"]) == (1, 0)
    for n in range(5):
        doc = written(doc, history.append({}, doc, [{"n": n}], NOW))
    # nothing was copied yet: every entry stays on the entity, numbered 1..6
    assert [e[SEQ] for e in doc["history"]] == [1, 2, 3, 4, 5, 6]
    doc["history_flushed"] = 6  # the relay copied them
    update = history.append({}, doc, [{"n": 9}], NOW)
    doc = written(doc, update)
    # only the `recent` last stay on the entity once the rest is in buckets
    assert [e[SEQ] for e in doc["history"]] == [6, 7]
    assert doc["history_count"] == 7
    assert update["$min"] == {SINCE: NOW}  # the sweep finds entries still to copy


def test_copies_are_keyed_by_number_into_buckets_of_bounded_size():
    history = log()
    doc = {"_id": "d", "history": [{"n": n, SEQ: n} for n in range(3, 7)],
           "history_count": 6, "history_flushed": 2}
    ops = history.copy_ops([doc])
    assert [op._filter["_id"] for op in ops] == ["d:00000000", "d:00000001"]
    assert sorted(ops[0]._doc["$set"]) == ["entity", "entries.3", "entries.4", "no"]
    assert sorted(ops[1]._doc["$set"]) == ["entity", "entries.5", "entries.6", "no"]
    assert history.flushed_update(doc) == {"$max": {"history_flushed": 6}}
    assert history.unchanged(doc) == {"history_count": 6}
    assert history.copy_ops([{**doc, "history_flushed": 6}]) == []


def test_a_document_from_before_the_buckets_is_numbered_and_readable():
    history = log()
    legacy = {"_id": "d", "history": [{"to": str(n)} for n in range(5)]}
    assert history.unflushed(legacy) == []  # left to the migration, not the relay
    copies, update = history.migration(legacy)
    assert sum(len([k for k in op._doc["$set"] if k.startswith("entries.")])
               for op in copies) == 5
    assert update["$set"]["history_count"] == update["$set"]["history_flushed"] == 5
    assert [e[SEQ] for e in update["$set"]["history"]] == [4, 5]
    # and a write that beats the migration numbers them itself, keeping them to copy
    after = written(legacy, history.append({}, legacy, [{"to": "x"}], NOW))
    assert [e[SEQ] for e in after["history"]] == [1, 2, 3, 4, 5, 6]
    assert after["history_flushed"] == 0
