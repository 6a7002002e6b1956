"""A lead's activities in bounded buckets (kit.buckets) on real FerretDB and RabbitMQ: the
lead keeps its recent entries, the timeline still shows every one (the lead's and a
contact's), scoring counts all of them, a losing concurrent write's entry lands nowhere,
erasure blanks the buckets too, a merge is logged like any entry, and leads stored with
all their activities inside migrate once, idempotently and resumably."""
import datetime as dt

import pytest

from kit.changes import Change
from kit.migrations import MARKERS, Runner
from leads import domain
from leads.migrations import activity_buckets
from leads.store import ACTIVITIES, LeadsStore, activity_log
from tests.support.roundtrips import COMMANDS
from tests.support.wait import wait_for

SMALL = {"ACTIVITIES": {"bucket_size": 7, "recent": 3}}
T0 = dt.datetime(2024, 5, 6, 9, 0, tzinfo=dt.UTC)
MIGRATION = "lead_activity_buckets_v1"


def start(container_factory, make_config, **overrides):
    from leads.service import LeadsService

    config = make_config("leads", **{**SMALL, **overrides})
    container = container_factory(LeadsService, config)
    container.start()
    store = next(d for d in container.dependencies if d.attr_name == "store").store
    return container, config, store


@pytest.fixture
def service(container_factory, make_config, api):
    container, config, store = start(container_factory, make_config)
    return api(config), store


def create(http, n, **fields):
    resp = http.post("/api/v1/leads", json={
        "name": f"Ada {n}", "email": f"ada{n}@engines.example", "country": "DE",
        "source": "web_form", **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def log(http, lead_id, kind, summary):
    resp = http.post(f"/api/v1/leads/{lead_id}/activities",
                     json={"type": kind, "summary": summary})
    assert resp.status_code == 201, resp.text
    return resp.json()


def settled(mongo_db, lead_id):
    """The relay is done with the lead: outbox empty and its due entries in buckets."""
    doc = mongo_db.leads.find_one({"_id": lead_id}, {
        "outbox": 1, "outbox_since": 1, "activities_count": 1, "activities_flushed": 1})
    return (doc["outbox"] == [] and "outbox_since" not in doc
            and doc["activities_count"] - doc["activities_flushed"] < 3)


def timeline(http, lead_id):
    resp = http.get(f"/api/v1/leads/{lead_id}/timeline")
    assert resp.status_code == 200, resp.text
    return resp.json()["activities"]


def test_activities_go_to_buckets_and_the_timeline_and_score_still_see_every_one(
        service, mongo_db):
    http, _ = service
    lead_id = create(http, 1)
    kinds = ["call", "note", "email", "note", "meeting"] * 4
    for n, kind in enumerate(kinds):
        added = log(http, lead_id, kind, f"entry {n}")
    assert wait_for(lambda: settled(mongo_db, lead_id))
    stored = mongo_db.leads.find_one({"_id": lead_id})
    assert stored["activities_count"] == 20
    assert len(stored["activities"]) < 2 * 3  # the recent ones; the rest in buckets
    assert stored["activity_counts"] == {"call": 4, "note": 8, "email": 4, "meeting": 4}
    assert mongo_db[ACTIVITIES].count_documents({"entity": lead_id}) == 3  # 7 a bucket
    assert [a["summary"] for a in timeline(http, lead_id)] == [f"entry {n}" for n in range(20)]
    # scoring counts the whole log: the call, e-mail and meeting rules still fire
    assert {"had_call", "replied_by_email", "had_meeting"} <= set(
        added["lead"]["score_rules"])
    lead = http.get(f"/api/v1/leads/{lead_id}").json()
    assert lead["score"] == added["lead"]["score"]
    # an edit rescores from the counts too, and is logged as entry 21
    resp = http.patch(f"/api/v1/leads/{lead_id}", json={"company": "Engines"},
                      headers={"If-Match": f'"{lead["version"]}"'})
    assert resp.status_code == 200, resp.text
    assert {"had_call", "has_company"} <= set(resp.json()["score_rules"])
    assert [a["type"] for a in timeline(http, lead_id)][-1] == "update"


def test_a_contact_timeline_shows_its_leads_whole_logs(service, mongo_db):
    http, _ = service
    lead_id = create(http, 2, company="Engines Ltd")
    for n in range(12):
        log(http, lead_id, "call", f"call {n}")
    for status in ("contacted", "qualified"):
        assert http.post(f"/api/v1/leads/{lead_id}/status",
                         json={"status": status}).status_code == 200
    converted = http.post(f"/api/v1/leads/{lead_id}/convert", json={})
    assert converted.status_code == 200, converted.text
    assert wait_for(lambda: settled(mongo_db, lead_id))
    contact_id = converted.json()["contact_id"]
    entries = http.get(f"/api/v1/contacts/{contact_id}/timeline").json()["entries"]
    calls = [e["summary"] for e in entries if e.get("lead_id") == lead_id
             and e["type"] == "call"]
    assert calls == [f"call {n}" for n in range(12)]


def test_a_losing_concurrent_write_carries_no_entry(service, mongo_db):
    """Two writers decide on the same lead; the one whose conditional write loses decides
    again, and only entries of writes that won are in the log."""
    http, store = service
    lead_id = create(http, 3)
    attempts = []

    def entry(summary):
        return {"id": summary, "type": "note", "at": T0, "actor": summary, "outcome": None,
                "summary": summary, "duration_minutes": None, "recorded_at": T0}

    def decide(lead):
        attempts.append(lead["version"])
        if len(attempts) == 1:  # another writer wins meanwhile
            store.change(lead_id, lambda current: domain.log(
                Change(set={"reason": "winner"}), current, entry("winner")))
        return domain.log(Change(set={"reason": f"attempt {len(attempts)}"}), lead,
                          entry(f"attempt {len(attempts)}"))

    store.change(lead_id, decide)
    assert len(attempts) == 2
    stored = mongo_db.leads.find_one({"_id": lead_id})
    assert stored["activities_count"] == 2 and stored["activity_counts"] == {"note": 2}
    assert [a["summary"] for a in timeline(http, lead_id)] == ["winner", "attempt 2"]
    assert [a["seq"] for a in stored["activities"]] == [1, 2]


def test_erasure_blanks_the_activities_in_the_buckets_too(service, mongo_db):
    http, _ = service
    lead_id = create(http, 4)
    for n in range(15):
        log(http, lead_id, "call", f"Ada's mobile is 0151 {n:04d}")
    assert wait_for(lambda: settled(mongo_db, lead_id))
    assert mongo_db[ACTIVITIES].count_documents({"entity": lead_id}) >= 1
    resp = http.post(f"/api/v1/leads/{lead_id}/erase")
    assert resp.status_code == 200, resp.text
    assert wait_for(lambda: settled(mongo_db, lead_id))
    for bucket in mongo_db[ACTIVITIES].find({"entity": lead_id}):
        assert all(e["summary"] is None for e in bucket["entries"].values()), bucket
    entries = timeline(http, lead_id)
    assert len(entries) == 16 and entries[-1]["type"] == "erasure"
    assert all(e["summary"] is None for e in entries)
    # a relay that read the lead before the erasure copies an entry after its bucket
    # was blanked: the timeline shows it blanked, and a repeated request blanks it there
    first = f"{lead_id}:00000000"
    mongo_db[ACTIVITIES].update_one({"_id": first},
                                    {"$set": {"entries.1.summary": "Ada's mobile, again"}})
    assert timeline(http, lead_id)[0]["summary"] is None
    again = http.post(f"/api/v1/leads/{lead_id}/erase")
    assert again.status_code == 200 and again.json()["version"] == resp.json()["version"]
    assert mongo_db[ACTIVITIES].find_one({"_id": first})["entries"]["1"]["summary"] is None
    assert len(timeline(http, lead_id)) == 16


def test_a_duplicate_capture_merges_into_a_lead_with_a_long_log(service, mongo_db):
    http, _ = service
    lead_id = create(http, 5)
    for n in range(9):
        log(http, lead_id, "email", f"mail {n}")
    merged = http.post("/api/v1/leads", params={"on_duplicate": "merge"}, json={
        "name": "Ada", "email": "ada5@engines.example", "company": "Engines",
        "source": "event"})
    assert merged.status_code == 200, merged.text
    assert merged.json()["fields"] == ["company"]
    assert wait_for(lambda: settled(mongo_db, lead_id))
    entries = timeline(http, lead_id)
    assert [e["type"] for e in entries] == ["email"] * 9 + ["merge"]
    stored = mongo_db.leads.find_one({"_id": lead_id})
    assert stored["activity_counts"] == {"email": 9, "merge": 1}
    assert "replied_by_email" in merged.json()["lead"]["score_rules"]


# --- leads stored with all their activities inside ------------------------------------------


def old_lead(i, activities):
    """A lead as stored before the buckets: every activity in the document, no counts."""
    _id = f"00000000-0000-4000-8000-{i:012d}"
    return {"_id": _id, "name": f"Old {i}", "company": None, "email": None, "phone": None,
            "country": "DE", "region": None, "source": "import", "status": "new",
            "score": 0, "grade": "D", "score_rules": [], "owner_id": None, "team": None,
            "custom": {}, "utm": {}, "created_at": T0 + dt.timedelta(hours=i),
            "updated_at": T0, "version": 1, "revision": 3, "outbox": [],
            "activities": [{"id": f"{i}-{n}", "type": ("call", "note")[n % 2],
                            "at": T0 + dt.timedelta(minutes=n), "actor": "ann",
                            "outcome": None, "summary": f"old {n}",
                            "duration_minutes": None, "recorded_at": T0}
                           for n in range(activities)],
            **domain.identity_keys(_id, None, None)}


def test_activities_stored_in_leads_migrate_once_idempotently_and_resumably(
        container_factory, make_config, api, mongo_db):
    olds = [old_lead(i, n) for i, n in enumerate((12, 0, 5, 30, 2))]
    mongo_db.leads.insert_many(olds)
    migration = activity_buckets(activity_log(SMALL))
    # a run "killed" after its first batch (two leads), and a later one that stopped
    # after the third lead's buckets, before the lead itself was written
    killed = Runner(mongo_db, batch_size=2, lease_seconds=0.2, owner="killed")
    assert killed.run(migration, max_batches=1) is False
    for op_collection, ops in migration.copies(mongo_db.leads.find_one({"_id": olds[2]["_id"]})):
        mongo_db[op_collection].bulk_write(ops)

    container, config, _ = start(container_factory, make_config, MIGRATIONS={
        "batch_size": 2, "lease_seconds": 0.5, "retry_seconds": 0.2})
    http = api(config)
    ran = next(d for d in container.extensions if d.__class__.__name__ == "Migrations")
    assert wait_for(lambda: ran.finished, timeout=30)
    marker = mongo_db[MARKERS].find_one({"_id": MIGRATION})
    assert (marker["status"], marker["fixed"]) == ("done", len(olds))
    for old in olds:
        count = len(old["activities"])
        doc = mongo_db.leads.find_one({"_id": old["_id"]})
        assert (doc["activities_count"], doc["activities_flushed"]) == (count, count)
        assert [a["seq"] for a in doc["activities"]] == list(
            range(max(count - 2, 1), count + 1))
        assert doc["activity_counts"] == domain.activity_counts(old)
        assert [a["summary"] for a in timeline(http, old["_id"])] == [
            a["summary"] for a in old["activities"]]
    before = list(mongo_db[ACTIVITIES].find().sort("_id"))
    assert len(before) == 2 + 1 + 5 + 1  # buckets of 7: 12, 5, 30 and 2 entries

    # run again from the start: nothing changes
    mongo_db[MARKERS].delete_one({"_id": MIGRATION})
    assert Runner(mongo_db, batch_size=2).run(migration) is True
    assert list(mongo_db[ACTIVITIES].find().sort("_id")) == before
    assert mongo_db[MARKERS].find_one({"_id": MIGRATION})["fixed"] == 0

    # a lead of the old shape written after the migration is numbered by its next write,
    # and its score counts what it had
    late = old_lead(9, 8)
    mongo_db.leads.insert_one(late)
    added = log(http, late["_id"], "meeting", "late")
    assert {"had_call", "had_meeting"} <= set(added["lead"]["score_rules"])
    assert wait_for(lambda: settled(mongo_db, late["_id"]))
    assert [a["summary"] for a in timeline(http, late["_id"])] == [
        *(a["summary"] for a in late["activities"]), "late"]


def test_a_migration_batch_writes_each_collection_once_however_many_leads_it_moves(
        mongo_db):
    LeadsStore(mongo_db, {}).ensure_indexes()
    mongo_db.leads.insert_many([old_lead(i, 9) for i in range(8)])
    migration = activity_buckets(activity_log(SMALL))
    COMMANDS.watch(mongo_db.name)
    assert Runner(mongo_db, batch_size=8).run(migration) is True
    writes = [(name, coll) for name, coll, _ in COMMANDS.take()
              if name == "update" and coll != MARKERS]
    # the first batch moves all eight, the second finds none
    assert sorted(writes) == [("update", ACTIVITIES), ("update", "leads")]
    assert mongo_db.leads.count_documents({"activities_flushed": 9}) == 8
