"""The new entities of a batch are written by one bulk write per collection and read back
(metrics.store._write_together): each projection comes back as stored, a redelivered event
still counts as a duplicate, and a bulk that stops part way (FerretDB v1 stops at its first
error, whatever `ordered` says) leaves no entity unwritten and no event applied twice.
Real: the configured MongoDB-protocol server (MONGO_URI)."""
import itertools

import pytest
from pymongo.database import Database

from kit.events import new_event, parse_event
from kit.fields import utcnow
from metrics.store import SOURCE_DB, MetricsStore

SEQ = itertools.count()


def parsed(etype, subject, data, sequence):
    envelope, loaded = parse_event(new_event(etype, subject, data, sequence))
    return {**envelope, "data": loaded}


def created(lead_id):
    return parsed("lead.created", lead_id, {
        "lead_id": lead_id, "name": "王芳", "source": "api", "score": 0, "grade": "D",
        "created_at": utcnow()}, 1)


def assigned(lead_id):
    return parsed("lead.assigned", lead_id, {
        "lead_id": lead_id, "owner_id": "rep-1", "team": "dach", "rule": "round_robin",
        "status": "new"}, 2)


def deal_created(deal_id, lead_id):
    return parsed("deal.created", deal_id, {
        "deal_id": deal_id, "lead_id": lead_id, "pipeline_id": "default",
        "stage": "discovery", "name": "x", "amount": "100.00", "currency": "EUR",
        "probability": 10, "created_at": utcnow()}, 1)


def lead_ids(n):
    run = next(SEQ)
    return [f"lead-{run}-{k}" for k in range(n)]


class Counting(MetricsStore):
    """Counts the find-and-modify writes of single entities."""

    single = 0

    def _apply_together(self, kind, entity_id, items, writer):
        type(self).single += 1
        return super()._apply_together(kind, entity_id, items, writer)


def store_on(mongo_db, cls=MetricsStore):
    store = cls(mongo_db)
    store.ensure_indexes()
    return store


def stored(mongo_db, kind, _id):
    return mongo_db[kind].find_one({"_id": _id})


def test_the_new_entities_of_a_batch_are_written_together_and_handed_over_as_stored(
        mongo_db, monkeypatch):
    monkeypatch.setattr(Counting, "single", 0)
    store = store_on(mongo_db, Counting)
    ids = lead_ids(6)
    deal_ids = [f"deal-{i}" for i in ids[:3]]
    events = ([e for i in ids for e in (created(i), assigned(i))]
              + [deal_created(d, i) for d, i in zip(deal_ids, ids, strict=False)])
    handed = []

    out = store.apply_batch(events, lambda kind, doc: handed.append((kind, doc)), "w-1")

    assert Counting.single == 0  # no entity needed a write of its own
    assert [(k, d["_id"]) for k, d in out] == ([("leads", i) for i in ids]
                                                + [("deals", d) for d in deal_ids])
    assert handed == out
    for kind, doc in out:
        mine = [e["id"] for e in events if e["subject"] == doc["_id"]]
        assert doc["applied"] == mine
        assert [f["id"] for f in doc["facts"]] == mine
        assert doc["rev"] == 1 and doc["by"] == "w-1" and "dups" not in doc
        assert doc[SOURCE_DB] == mongo_db.name
        assert {k: v for k, v in doc.items() if k != SOURCE_DB} == stored(mongo_db, kind,
                                                                           doc["_id"])
    # the join and window keys the funnel queries use are set as by a single write
    assert stored(mongo_db, "deals", deal_ids[0])["lead_id"] == ids[0]
    assert stored(mongo_db, "leads", ids[0])["created_at"] is not None

    # existing projections get a find-and-modify each (which tells duplicates apart)
    later = [parsed("lead.contacted", i, {
        "lead_id": i, "source": "api", "created_at": utcnow(), "contacted_at": utcnow(),
        "first_response_seconds": 60, "status": "contacted"}, 3) for i in ids]
    out = store.apply_batch(later, writer="w-1")
    assert Counting.single == len(ids)
    for (_, doc), event in zip(out, later, strict=True):
        assert doc["rev"] == 2 and doc["applied"][-1] == event["id"]
        assert len(doc["facts"]) == 3


def test_a_redelivered_event_counts_as_a_duplicate_beside_new_entities(mongo_db):
    store = store_on(mongo_db)
    ids = lead_ids(4)
    first = created(ids[0])
    store.apply_batch([first])

    again = [first, assigned(ids[0])] + [created(i) for i in ids[1:]]
    out = dict((doc["_id"], doc) for _, doc in store.apply_batch(again))

    redelivered = stored(mongo_db, "leads", ids[0])
    assert [f["id"] for f in redelivered["facts"]] == [first["id"], again[1]["id"]]
    assert redelivered["dups"] == {"lead_created": 1}
    assert out[ids[0]]["rev"] == redelivered["rev"]
    for i in ids[1:]:
        assert len(stored(mongo_db, "leads", i)["facts"]) == 1
        assert "dups" not in out[i]


@pytest.mark.parametrize("copy", [True, False], ids=["a-copy-of-its-event", "another-event"])
def test_a_bulk_stopped_part_way_leaves_no_entity_unwritten_and_nothing_applied_twice(
        mongo_db, monkeypatch, copy):
    """Between the first read and the bulk, another instance makes the second entity's
    projection: from a copy of one of its events (the relay published it twice, and the
    copies went to two instances), or from another event of it. That statement fails on
    the duplicate `_id`, FerretDB stops the bulk there, and the entities after it are
    written one by one; the copy counts as a duplicate, the other event does not."""
    monkeypatch.setattr(Counting, "single", 0)
    store = store_on(mongo_db, Counting)
    ids = lead_ids(5)
    events = [e for i in ids for e in (created(i), assigned(i))]
    racing = events[2] if copy else parsed("lead.contacted", ids[1], {
        "lead_id": ids[1], "source": "api", "created_at": utcnow(), "contacted_at": utcnow(),
        "first_response_seconds": 60, "status": "contacted"}, 3)
    original = Database.command

    def raced(self, command, *args, **kwargs):
        if command == "update":
            monkeypatch.setattr(Database, "command", original)
            MetricsStore(mongo_db).apply_batch([racing], writer="w-2")
        return original(self, command, *args, **kwargs)

    monkeypatch.setattr(Database, "command", raced)
    out = dict((doc["_id"], doc) for _, doc in store.apply_batch(events, writer="w-1"))

    # the raced entity went on its own (and on FerretDB, every one after it)
    assert Counting.single >= 1
    for i in ids:
        doc = stored(mongo_db, "leads", i)
        mine = {e["id"] for e in events if e["subject"] == i} | (
            {racing["id"]} if i == ids[1] else set())
        assert sorted(f["id"] for f in doc["facts"]) == sorted(mine), i
        assert sorted(doc["applied"]) == sorted(mine)
        assert out[i]["rev"] == doc["rev"]
    raced_doc = stored(mongo_db, "leads", ids[1])
    assert raced_doc.get("dups") == ({"lead_created": 1} if copy else None)
    assert all("dups" not in stored(mongo_db, "leads", i) for i in ids if i != ids[1])
