"""kit.buckets: an entity's log numbered in its own write, copied into bounded buckets."""
import datetime as dt

from kit.buckets import SEQ, BucketLog
from kit.outbox import SINCE

NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)


def log(**options):
    return BucketLog("history", "deal_history", **{"size": 4, "recent": 3, **options})


def written(doc, update):
    """The document after what `append` or the relay's clear writes."""
    doc = {**doc, **update.get("$set", {})}
    for field, push in update.get("$push", {}).items():
        doc[field] = [*doc.get(field, []), *push["$each"]]
    for field, top in update.get("$max", {}).items():
        doc[field] = max(doc.get(field, 0), top)
    for field, gone in update.get("$pullAll", {}).items():
        doc[field] = [e for e in doc[field] if e not in gone]
    return doc


def test_a_write_pushes_only_its_new_entries_numbered_after_the_last():
    history = log()
    doc = history.start({"_id": "d", "history": [{"to": "a"}]})
    assert doc["history"] == [{"to": "a", SEQ: 1}]
    assert (doc["history_count"], doc["history_flushed"]) == (1, 0)
    update = history.append({}, doc, [{"n": 1}], NOW)
    assert update == {"$set": {"history_count": 2},
                      "$push": {"history": {"$each": [{"n": 1, SEQ: 2}]}}}
    doc = written(doc, update)
    update = history.append({}, doc, [{"n": 2}], NOW)
    assert update["$min"] == {SINCE: NOW}  # `recent` wait: the sweep finds them too
    assert history.due(written(doc, update)) != []


def test_the_relay_copies_once_recent_entries_wait_and_the_entity_keeps_the_recent():
    history = log()
    doc = history.start({"_id": "d", "history": [{"n": 0}]})
    for n in range(1, 8):
        assert history.copy_ops([doc]) == [] or len(history.unflushed(doc)) >= 3
        doc = written(doc, history.append({}, doc, [{"n": n}], NOW))
        if history.due(doc):
            ops = history.copy_ops([doc])
            assert all(set(op._doc["$set"]) >= {"entity", "no"} for op in ops)
            doc = written(doc, history.flushed_update(doc))
    # 8 entries, 6 copied in two rounds of 3; 4..8 stay (3 recent copied + 2 waiting)
    assert (doc["history_count"], doc["history_flushed"]) == (8, 6)
    assert [e[SEQ] for e in doc["history"]] == [4, 5, 6, 7, 8]
    assert history.unchanged(doc) == {"history_count": 8}


def test_copies_are_keyed_by_number_into_buckets_of_bounded_size():
    history = log()
    doc = {"_id": "d", "history": [{"n": n, SEQ: n} for n in range(3, 7)],
           "history_count": 6, "history_flushed": 2}
    ops = history.copy_ops([doc])
    assert [op._filter["_id"] for op in ops] == ["d:00000000", "d:00000001"]
    assert sorted(ops[0]._doc["$set"]) == ["entity", "entries.3", "entries.4", "no"]
    assert sorted(ops[1]._doc["$set"]) == ["entity", "entries.5", "entries.6", "no"]
    assert history.flushed_update(doc) == {
        "$max": {"history_flushed": 6}, "$pullAll": {"history": [{"n": 3, SEQ: 3}]}}


def test_a_document_from_before_the_buckets_is_numbered_and_readable():
    history = log()
    legacy = {"_id": "d", "history": [{"to": str(n)} for n in range(5)]}
    assert history.unflushed(legacy) == []  # left to the migration, not the relay
    copies, update = history.migration(legacy)
    assert sum(len([k for k in op._doc["$set"] if k.startswith("entries.")])
               for op in copies) == 5
    assert update["$set"]["history_count"] == update["$set"]["history_flushed"] == 5
    assert [e[SEQ] for e in update["$set"]["history"]] == [3, 4, 5]
    # and a write that beats the migration numbers them itself, keeping them to copy
    after = written(legacy, history.append({}, legacy, [{"to": "x"}], NOW))
    assert [e[SEQ] for e in after["history"]] == [1, 2, 3, 4, 5, 6]
    assert after["history_flushed"] == 0
    assert history.unchanged(legacy) == {"history_count": {"$exists": False}}


def test_a_change_that_rewrites_the_entries_gets_the_new_ones_after_them():
    """An erasure blanks the entries the entity holds and logs itself in one `$set`
    (a `$push` beside a `$set` of the same array is refused by the server)."""
    history = log()
    doc = {"_id": "d", "history": [{"t": "a", SEQ: 4}, {"t": "b", SEQ: 5}],
           "history_count": 5, "history_flushed": 3}
    blanked = [{**e, "t": None} for e in doc["history"]]
    update = history.append({"$set": {"history": blanked}}, doc, [{"t": "erased"}], NOW)
    assert "$push" not in update and update["$set"]["history_count"] == 6
    assert [(e["t"], e[SEQ]) for e in update["$set"]["history"]] == [
        (None, 4), (None, 5), ("erased", 6)]
    legacy = {"_id": "d", "history": [{"t": "a"}, {"t": "b"}]}
    update = history.append({"$set": {"history": [{"t": None}, {"t": None}]}}, legacy,
                            [{"t": "erased"}], NOW)
    assert [(e["t"], e[SEQ]) for e in update["$set"]["history"]] == [
        (None, 1), (None, 2), ("erased", 3)]


def test_bucket_ids_cover_every_entry_of_the_count():
    history = log()
    assert history.bucket_ids("d", 0) == []
    assert history.bucket_ids("d", 4) == ["d:00000000"]
    assert history.bucket_ids("d", 9) == ["d:00000000", "d:00000001", "d:00000002"]


# --- keyed entries (an account's conversions by lead) --------------------------------------


def keyed(**options):
    return BucketLog("activities", "account_activities", keys="account_conversions",
                     key=lambda e: e.get("lead"), **{"size": 4, "recent": 3, **options})


def test_the_relay_writes_a_key_per_keyed_due_entry_with_its_buckets():
    log_ = keyed()
    doc = {"_id": "a", "activities": [{"lead": "L1", SEQ: 1}, {"type": "merged", SEQ: 2},
                                      {"lead": "L3", SEQ: 3}],
           "activities_count": 3, "activities_flushed": 0}
    [(buckets, copies), (keys, ops)] = log_.copy_writes([doc])
    assert (buckets, keys) == ("account_activities", "account_conversions")
    assert copies == log_.copy_ops([doc])
    assert [(op._filter["_id"], op._doc["$set"]) for op in ops] == [
        ("a:L1", {"entity": "a", SEQ: 1}), ("a:L3", {"entity": "a", SEQ: 3})]
    assert [op._upsert for op in ops] == [True, True]
    # nothing due: nothing to write; a log without keys writes buckets only
    assert log_.copy_writes([{**doc, "activities_flushed": 1}]) == []
    assert [c for c, _ in log(recent=3).copy_writes([{**doc, "history": doc["activities"],
                                                      "history_count": 3}])] == ["deal_history"]


def test_holds_answers_from_the_entity_when_it_holds_the_key_or_its_whole_log():
    """No database (None) is touched then; the one key read by `_id` otherwise is counted
    on the real one (tests/integration/leads/test_leads_record_buckets.py)."""
    log_ = keyed()
    whole = {"_id": "a", "activities": [{"lead": "L1", SEQ: 1}, {"lead": "L2", SEQ: 2}],
             "activities_count": 2, "activities_flushed": 0}
    assert log_.holds(None, whole, "L2") and not log_.holds(None, whole, "L9")
    part = {"_id": "a", "activities": [{"lead": "L7", SEQ: 7}], "activities_count": 7,
            "activities_flushed": 6}
    assert log_.holds(None, part, "L7")
    # a record stored before the buckets holds its whole log; a log without keys says no
    assert log_.holds(None, {"_id": "a", "activities": [{"lead": "L1"}]}, "L1")
    assert not log(recent=3).holds(None, part, "L0")


def test_a_migration_writes_the_keys_of_every_entry_with_its_buckets():
    log_ = keyed()
    old = {"_id": "a", "activities": [{"lead": f"L{n}"} for n in range(5)]}
    [(buckets, copies), (keys, ops)] = log_.migration_writes(old)
    assert [op._filter["_id"] for op in copies] == ["a:00000000", "a:00000001"]
    assert [op._filter["_id"] for op in ops] == [f"a:L{n}" for n in range(5)]
    assert [op._doc["$set"][SEQ] for op in ops] == [1, 2, 3, 4, 5]
