"""Accounts' and contacts' timelines in bounded buckets (kit.buckets) on real FerretDB and
RabbitMQ: a customer that converted hundreds of leads has an account as small as a new
one and a conversion costs the same commands; a retried conversion notes itself once
however far its entry went into the buckets; the account timeline pages across buckets;
a merge and an erasure reach the buckets; records stored with their whole timeline
migrate once, idempotently."""
import datetime as dt

import pytest

from kit.migrations import MARKERS, Runner
from leads import accounts
from leads.migrations import record_activity_buckets
from leads.records_store import ACCOUNTS, ACTIVITIES, CONTACTS, CONVERSIONS, record_logs
from tests.support.roundtrips import COMMANDS
from tests.support.wait import wait_for

RECENT, SIZE = 5, 50
SMALL = {"ACTIVITIES": {"records_recent": RECENT, "records_bucket_size": SIZE}}
QUIET = {"OUTBOX": {"sweep_interval_seconds": 3600},
         "FOLLOWUP": {"check_interval_seconds": 3600},
         "SLA": {"check_interval_seconds": 3600, "response_minutes": 0},
         "CAPTURE": {"sweep_interval_seconds": 3600}}
T0 = dt.datetime(2024, 5, 6, 9, 0, tzinfo=dt.UTC)
COMPANY = "Big Customer GmbH"


def start(container_factory, make_config, **overrides):
    from leads.service import LeadsService

    config = make_config("leads", **{**QUIET, **SMALL, **overrides})
    container = container_factory(LeadsService, config)
    container.start()
    store = next(d for d in container.dependencies if d.attr_name == "store").store
    migrations = next(d for d in container.dependencies if d.attr_name == "migrations")
    assert wait_for(lambda: migrations.finished)  # start-up work, not a conversion's
    return container, config, store


@pytest.fixture
def service(container_factory, make_config, api):
    _, config, store = start(container_factory, make_config)
    return api(config), store


def buyer(n, company=COMPANY):
    """A converting lead as the store reads it (leads.store `get`)."""
    return {"_id": f"lead-{n:05d}", "name": f"Buyer {n}", "email": f"buyer{n}@big.example",
            "phone": None, "company": company, "owner_id": None, "team": None}


def link(store, n, company=COMPANY):
    return store.link_conversion(buyer(n, company), frozenset(), T0, "ann")


def settled(mongo_db, coll, _id):
    """The relay is done with the record: outbox empty and no entries due for buckets."""
    doc = mongo_db[coll].find_one({"_id": _id}, {
        "outbox": 1, "outbox_since": 1, "activities_count": 1, "activities_flushed": 1})
    return (doc["outbox"] == [] and "outbox_since" not in doc
            and doc["activities_count"] - doc.get("activities_flushed", 0) < RECENT)


def account_pages(http, account_id, limit=7):
    """Every entry of the account's timeline through its pages (oldest first)."""
    rows, cursor = [], None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = http.get(f"/api/v1/accounts/{account_id}/timeline", params=params)
        assert page.status_code == 200, page.text
        assert len(page.json()["entries"]) <= limit
        rows += page.json()["entries"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return rows


def counted(sent):
    out = {}
    for name, coll, _ in sent:
        out[(name, coll)] = out.get((name, coll), 0) + 1
    return out


def test_an_account_with_300_conversions_stays_small_and_converts_at_the_same_cost(
        service, mongo_db):
    http, store = service
    account_id, _ = link(store, 0)
    measured = {}
    for n in range(1, 300):
        if n in (30, 299):
            assert wait_for(lambda: settled(mongo_db, ACCOUNTS, account_id))
            COMMANDS.watch(mongo_db.name)
            link(store, n)
            contact_id = accounts.contact_id_for(buyer(n)["_id"])
            assert wait_for(lambda c=contact_id: settled(mongo_db, CONTACTS, c))
            measured[n] = sorted(COMMANDS.take())
        else:
            link(store, n)
    assert wait_for(lambda: settled(mongo_db, ACCOUNTS, account_id))
    stored = mongo_db[ACCOUNTS].find_one({"_id": account_id})
    # the account holds its recent entries only: the rest of 301 are in buckets of 50
    assert stored["activities_count"] == 301
    assert len(stored["activities"]) < 2 * RECENT
    flushed = stored["activities_flushed"]
    assert flushed > 301 - RECENT
    assert mongo_db[ACTIVITIES[ACCOUNTS]].count_documents({"entity": account_id}) == \
        -(-flushed // SIZE)
    assert mongo_db[CONVERSIONS].count_documents({"entity": account_id}) >= 300 - 2 * RECENT
    # a conversion into it sends the same commands of the same size at 30 as at 300 (the
    # relay's updates, which copy entries into buckets when it finds the log due, aside)
    early, late = ([c for c in measured[n] if c[0] != "update"] for n in (30, 299))
    assert [(n, c) for n, c, _ in late] == [(n, c) for n, c, _ in early], (early, late)
    # (a few bytes more for wider numbers, and 33 when a write makes the log due and so
    # carries the sweep's mark, `$min outbox_since`: that depends on the relay's timing)
    assert all(o[2] <= e[2] + 16 + 33 for o, e in zip(late, early, strict=True)), (early, late)
    assert counted(late)[("find", CONVERSIONS)] == 1  # the O(1) "noted already?"
    assert counted(late)[("findAndModify", ACCOUNTS)] == 1


def test_a_retried_conversion_notes_itself_once_though_its_entry_is_in_a_bucket(
        service, mongo_db):
    http, store = service
    resp = http.post("/api/v1/leads", json={
        "name": "Ada", "email": "ada@big.example", "company": COMPANY, "country": "DE",
        "source": "web_form"})
    assert resp.status_code == 201, resp.text
    lead_id = resp.json()["id"]
    for status in ("contacted", "qualified"):
        assert http.post(f"/api/v1/leads/{lead_id}/status",
                         json={"status": status}).status_code == 200
    # a first attempt linked the account and contact, then stopped before the lead's write
    account_id, contact_id = store.link_conversion(store.get(lead_id), frozenset(), T0, "ann")
    for n in range(3 * RECENT):  # its entry leaves the account for a bucket
        link(store, n)
    assert wait_for(lambda: settled(mongo_db, ACCOUNTS, account_id))
    stored = mongo_db[ACCOUNTS].find_one({"_id": account_id})
    assert lead_id not in [e.get("lead_id") for e in stored["activities"]]
    count = stored["activities_count"]
    # the retry converts the lead and links the same records, noting nothing twice
    converted = http.post(f"/api/v1/leads/{lead_id}/convert", json={})
    assert converted.status_code == 200, converted.text
    assert (converted.json()["account_id"], converted.json()["contact_id"]) == (
        account_id, contact_id)
    assert mongo_db[ACCOUNTS].find_one({"_id": account_id})["activities_count"] == count
    # and so does a repeated link of one whose entry is still on the account
    link(store, 3 * RECENT - 1)
    assert mongo_db[ACCOUNTS].find_one({"_id": account_id})["activities_count"] == count
    entries = account_pages(http, account_id)
    assert [e["lead_id"] for e in entries if e["type"] == "conversion"].count(lead_id) == 1
    assert [e["seq"] for e in entries] == list(range(1, count + 1))


def test_the_account_timeline_pages_across_its_buckets_oldest_first(service, mongo_db):
    http, store = service
    account_id, _ = link(store, 0)
    for n in range(1, 2 * SIZE + 10):  # 110 conversions: 111 entries
        link(store, n)
    assert wait_for(lambda: settled(mongo_db, ACCOUNTS, account_id))
    entries = account_pages(http, account_id, limit=23)
    assert [e["seq"] for e in entries] == list(range(1, 2 * SIZE + 12))
    assert entries[0]["type"] == "created"
    assert [e["lead_id"] for e in entries[1:]] == [buyer(n)["_id"]
                                                   for n in range(2 * SIZE + 10)]
    first = http.get(f"/api/v1/accounts/{account_id}/timeline").json()
    assert len(first["entries"]) == 50 and first["next_cursor"]
    for bad in ("bm9wZQ", "MA"):  # not JSON; 0
        resp = http.get(f"/api/v1/accounts/{account_id}/timeline", params={"cursor": bad})
        assert resp.status_code == 400 and "cursor" in resp.json()["errors"], resp.text


def test_a_merged_account_keeps_its_whole_history(service, mongo_db):
    http, store = service
    duplicate, _ = link(store, 0, company="Big Customer Trading")
    for n in range(1, 20):
        link(store, n, company="Big Customer Trading")
    keep = http.post("/api/v1/accounts", json={"name": "Big Customer"}).json()
    resp = http.post(f"/api/v1/accounts/{duplicate}/merge", json={"into": keep["id"]})
    assert resp.status_code == 200, resp.text
    assert wait_for(lambda: settled(mongo_db, ACCOUNTS, duplicate))
    entries = account_pages(http, duplicate)
    assert [e["seq"] for e in entries] == list(range(1, 23))
    assert [e["type"] for e in entries] == ["created"] + ["conversion"] * 20 + ["merged"]
    assert entries[-1]["into"] == keep["id"]
    assert len(mongo_db[ACCOUNTS].find_one({"_id": duplicate})["activities"]) < 2 * RECENT
    # a later conversion of that company lands in the survivor, noted there
    survivor, _ = link(store, 20, company="Big Customer Trading")
    assert survivor == keep["id"]
    assert [e["type"] for e in account_pages(http, keep["id"])] == ["created", "conversion"]


def test_erasure_blanks_the_contacts_entries_in_its_buckets(service, mongo_db):
    http, store = service
    resp = http.post("/api/v1/leads", json={
        "name": "Ada", "email": "ada@big.example", "company": COMPANY, "country": "DE",
        "source": "web_form"})
    lead_id = resp.json()["id"]
    for status in ("contacted", "qualified"):
        assert http.post(f"/api/v1/leads/{lead_id}/status",
                         json={"status": status}).status_code == 200
    contact_id = http.post(f"/api/v1/leads/{lead_id}/convert", json={}).json()["contact_id"]
    path = f"/api/v1/contacts/{contact_id}"
    for n in range(12):  # each edit records the old and new title in the timeline
        edit = http.patch(path, json={"title": f"Chief {n} of Ada's things"},
                          headers={"If-Match": http.get(path).headers["ETag"]})
        assert edit.status_code == 200, edit.text
    assert wait_for(lambda: settled(mongo_db, CONTACTS, contact_id))
    assert mongo_db[ACTIVITIES[CONTACTS]].count_documents({"entity": contact_id}) == 1
    assert "Chief 0" in str(mongo_db[ACTIVITIES[CONTACTS]].find_one({"entity": contact_id}))
    assert http.post(f"/api/v1/leads/{lead_id}/erase").status_code == 200
    assert wait_for(lambda: settled(mongo_db, CONTACTS, contact_id))
    for bucket in mongo_db[ACTIVITIES[CONTACTS]].find({"entity": contact_id}):
        assert "Chief" not in str(bucket), bucket
    assert "Chief" not in str(mongo_db[CONTACTS].find_one({"_id": contact_id}))
    own = store.record_activities(CONTACTS, store.record(CONTACTS, contact_id, full=True))
    assert [e["type"] for e in own] == ["created"] + ["update"] * 12 + ["erasure"]
    assert "Chief" not in str(own)
    assert "Chief" not in http.get(f"{path}/timeline").text
    # a relay that read the contact before the erasure copies an entry after its bucket was
    # blanked: the timeline shows it blanked, and a repeated request blanks it there too
    bucket_id = f"{contact_id}:00000000"
    mongo_db[ACTIVITIES[CONTACTS]].update_one(
        {"_id": bucket_id}, {"$set": {"entries.3.changes": {"title": {"to": "Chief again"}}}})
    assert "Chief" not in http.get(f"{path}/timeline").text
    assert http.post(f"/api/v1/leads/{lead_id}/erase").status_code == 200
    assert "Chief" not in str(mongo_db[ACTIVITIES[CONTACTS]].find_one({"_id": bucket_id}))


# --- records stored with their whole timeline inside -------------------------------------


def old_account(i, conversions):
    """An account as stored before the buckets: every entry in the document, no counts."""
    _id = f"acc-{i:04d}"
    doc, _ = accounts.new_account(_id, {"name": f"Old Company {i}"}, T0 + dt.timedelta(hours=i))
    doc["activities"] += [accounts._entry("conversion", T0, "ann", lead_id=f"old-{i}-{n}",
                                          contact_id=f"c-{i}-{n}") for n in range(conversions)]
    return {**doc, "outbox": [], "version": 1, "revision": 3}


def old_contact(i, edits):
    _id = f"con-{i:04d}"
    doc, _ = accounts.new_contact(_id, "acc-0000", {"name": f"Wei {i}", "email": None},
                                  T0 + dt.timedelta(hours=i))
    doc["activities"] += [accounts._entry("update", T0, "ann", fields=["title"], changes={
        "title": {"from": None, "to": f"title {n}"}}) for n in range(edits)]
    return {**doc, "outbox": [], "version": 1, "revision": 2}


def test_records_stored_with_their_timeline_migrate_once_idempotently(
        container_factory, make_config, api, mongo_db):
    olds = [old_account(i, n) for i, n in enumerate((60, 0, 7))]
    contacts = [old_contact(i, n) for i, n in enumerate((12, 0))]
    mongo_db[ACCOUNTS].insert_many(olds)
    mongo_db[CONTACTS].insert_many(contacts)
    _, config, store = start(container_factory, make_config,
                             MIGRATIONS={"batch_size": 2, "retry_seconds": 0.2})
    http = api(config)
    for coll, docs in ((ACCOUNTS, olds), (CONTACTS, contacts)):
        marker = mongo_db[MARKERS].find_one({"_id": f"{coll[:-1]}_activity_buckets_v1"})
        assert (marker["status"], marker["fixed"]) == ("done", len(docs))
        for old in docs:
            count = len(old["activities"])
            doc = mongo_db[coll].find_one({"_id": old["_id"]})
            assert (doc["activities_count"], doc["activities_flushed"]) == (count, count)
            assert [a["seq"] for a in doc["activities"]] == list(
                range(max(count - RECENT + 1, 1), count + 1))
    assert [e["lead_id"] for e in account_pages(http, olds[0]["_id"])] == [
        a["lead_id"] for a in olds[0]["activities"]]
    entries = http.get(f"/api/v1/contacts/{contacts[0]['_id']}/timeline").json()["entries"]
    assert [e["type"] for e in entries] == ["created"] + ["update"] * 12
    before = {c: list(mongo_db[c].find().sort("_id"))
              for c in (ACTIVITIES[ACCOUNTS], ACTIVITIES[CONTACTS], CONVERSIONS)}
    # buckets of 50: accounts of 61, 1 and 8 entries, contacts of 13 and 1; 67 conversions
    assert [len(before[c]) for c in before] == [2 + 1 + 1, 1 + 1, 60 + 7]

    # a conversion noted before the migration is noted once: its key moved with it
    first = olds[0]["activities"][1]["lead_id"]
    again = store.link_conversion({**buyer(0, "Old Company 0"), "_id": first}, frozenset(),
                                  T0, "ann")
    assert again[0] == olds[0]["_id"]
    assert mongo_db[ACCOUNTS].find_one({"_id": olds[0]["_id"]})["activities_count"] == 61
    assert [e["lead_id"] for e in account_pages(http, olds[0]["_id"])].count(first) == 1

    # run again from the start: nothing changes
    logs = record_logs(SMALL)
    for coll in (ACCOUNTS, CONTACTS):
        migration = record_activity_buckets(logs[coll], coll)
        mongo_db[MARKERS].delete_one({"_id": migration.name})
        assert Runner(mongo_db, batch_size=2).run(migration) is True
        assert mongo_db[MARKERS].find_one({"_id": migration.name})["fixed"] == 0
    for coll, docs in before.items():
        if coll != CONVERSIONS:
            assert list(mongo_db[coll].find().sort("_id")) == docs
