"""A deal's history in bounded buckets (kit.buckets) on the real database: paged whole,
never disagreeing with the deal (a losing concurrent write's entry lands nowhere), and the
history of deals stored before the buckets migrated, idempotently and resumably."""
import datetime as dt

from deals import domain
from deals import pipelines as P
from deals.migrations import history_buckets
from deals.store import DEALS, HISTORY, encode, history_log
from kit.migrations import MARKERS, Runner
from tests.integration.deals.deals_support import Client, start_deals, store_of, wait_for

T0 = dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC)
SMALL = {"DEALS": {"history_bucket_size": 7, "history_recent": 3}}


def legacy_deal(deal_id, entries):
    """A deal as stored before the buckets: its history a plain list in the document."""
    deal, _ = domain.new_deal(P.default_pipeline(), {"name": f"Old {deal_id}"}, deal_id, T0)
    doc = encode(deal)
    doc["history"] = [{"at": T0 + dt.timedelta(minutes=n), "by": "u",
                       "changes": {"amount": {"from": str(n), "to": str(n + 1)}}}
                      for n in range(entries)]
    return {**doc, "outbox": [], "revision": 4}


def whole(http, deal_id, limit=4):
    """Every entry of the deal's history through its pages (newest first)."""
    rows, cursor = [], None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = http.get(f"/api/v1/deals/{deal_id}/history", params=params)
        assert page.status_code == 200, page.text
        rows += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return rows


def test_history_pages_whole_newest_first_while_the_deal_keeps_its_recent_entries(
        container_factory, make_config, api, mongo_db):
    config = make_config("deals", **SMALL)
    start_deals(container_factory, config)
    http = api(config)
    client = Client(http)
    deal = client.create(amount="10.00", currency="EUR")
    assert (deal["history_count"], deal["history"][0]["seq"]) == (1, 1)
    for n in range(20):
        deal = client.must(deal, "", {"amount": f"{11 + n}.00"}, method="patch")
    assert wait_for(lambda: mongo_db[DEALS].find_one({"_id": deal["id"]})["outbox"] == [])
    rows = whole(http, deal["id"])
    assert [r["seq"] for r in rows] == list(range(21, 0, -1))
    assert rows[-1]["to"] == "discovery" and rows[0]["changes"]["amount"]["to"] == "30.00"
    shown = http.get(f"/api/v1/deals/{deal['id']}").json()
    assert shown["history_count"] == 21
    assert 3 <= len(shown["history"]) < 2 * 3 + 1  # recent ones, oldest first
    assert [h["seq"] for h in shown["history"]] == sorted(h["seq"] for h in shown["history"])
    assert mongo_db[HISTORY].count_documents({"entity": deal["id"]}) <= 3  # 7 a bucket
    bad = http.get(f"/api/v1/deals/{deal['id']}/history", params={"cursor": "bm9wZQ"})
    assert bad.status_code == 400 and "cursor" in bad.json()["errors"]


def test_a_losing_concurrent_write_leaves_no_entry_anywhere(
        container_factory, make_config, api, mongo_db):
    """Two writers decide on the same version; the one whose conditional write loses
    decides again, and only the entries of writes that won are in the history."""
    config = make_config("deals", **SMALL)
    container = start_deals(container_factory, config)
    store, http = store_of(container), api(config)
    deal = Client(http).create()
    attempts = []

    pipeline = store.get_pipeline(deal["pipeline_id"])
    now = dt.datetime.now(dt.UTC)

    def decide(current):
        attempts.append(current["version"])
        if len(attempts) == 1:  # another writer wins meanwhile
            store.change(deal["id"], lambda d: domain.update(
                pipeline, d, {"owner_id": "winner"}, now, actor="winner"))
        return domain.update(pipeline, current, {"owner_id": f"attempt {len(attempts)}"},
                             now, actor=f"attempt {len(attempts)}")

    store.change(deal["id"], decide)
    assert wait_for(lambda: mongo_db[DEALS].find_one({"_id": deal["id"]})["outbox"] == [])
    assert [r.get("by") for r in whole(http, deal["id"])] == ["attempt 2", "winner", "ada"]


def test_history_stored_in_deals_migrates_once_idempotently_and_resumably(
        container_factory, make_config, api, mongo_db):
    mongo_db[DEALS].insert_many([legacy_deal("d-a", 12), legacy_deal("d-b", 5)])
    # a migration that stopped after d-a's buckets, before its deal was updated
    from kit.buckets import BucketLog
    copies, _ = BucketLog("history", HISTORY, size=7, recent=3).migration(
        mongo_db[DEALS].find_one({"_id": "d-a"}))
    mongo_db[HISTORY].bulk_write(copies)
    config = make_config("deals", **SMALL)
    start_deals(container_factory, config)
    http = api(config)
    migration = history_buckets(history_log(config))
    assert wait_for(lambda: (mongo_db[MARKERS].find_one({"_id": migration.name})
                             or {}).get("status") == "done")
    for deal_id, entries in (("d-a", 12), ("d-b", 5)):
        doc = mongo_db[DEALS].find_one({"_id": deal_id})
        assert (doc["history_count"], doc["history_flushed"]) == (entries, entries)
        assert [e["seq"] for e in doc["history"]] == list(range(entries - 2, entries + 1))
        assert [r["seq"] for r in whole(http, deal_id)] == list(range(entries, 0, -1))
    before = list(mongo_db[HISTORY].find().sort("_id"))
    # run again from the start: nothing changes
    mongo_db[MARKERS].delete_many({})
    assert Runner(mongo_db, batch_size=1).run(migration) is True
    assert mongo_db[MARKERS].find_one({"_id": migration.name})["fixed"] == 0
    assert list(mongo_db[HISTORY].find().sort("_id")) == before

    # a deal of the old shape written after the migration is numbered by its next write
    mongo_db[DEALS].insert_one(legacy_deal("d-c", 4))
    client = Client(http)
    late = client.must(http.get("/api/v1/deals/d-c").json(), "", {"name": "late"},
                       method="patch")
    client.must(late, "", {"amount": "5.00", "currency": "EUR"}, method="patch")
    assert wait_for(lambda: mongo_db[DEALS].find_one({"_id": "d-c"})["history_flushed"] == 5)
    assert [r["seq"] for r in whole(http, "d-c")] == list(range(5, 0, -1))


def test_readiness_waits_for_the_indexes_not_for_a_migration(
        container_factory, make_config, api, mongo_db):
    """A big legacy database's migration must not keep a new instance out of service:
    here another instance holds it (a lease that has not lapsed), and deals of the old
    shape are served meanwhile."""
    mongo_db[DEALS].insert_one(legacy_deal("d-old", 6))
    config = make_config("deals", **SMALL)
    migration = history_buckets(history_log(config))
    mongo_db[MARKERS].insert_one({
        "_id": migration.name, "status": "running", "last_id": None, "fixed": 0,
        "owner": "another instance", "lease_until": dt.datetime(2999, 1, 1, tzinfo=dt.UTC),
        "started_at": T0})
    start_deals(container_factory, config)
    http = api(config)
    ready = wait_for(lambda: (r := http.get("/readyz")).status_code == 200 and r, timeout=20)
    assert ready.json()["checks"]["indexes"] == "ok"
    assert "history_count" not in mongo_db[DEALS].find_one({"_id": "d-old"})  # not migrated
    assert [r["seq"] for r in whole(http, "d-old")] == list(range(6, 0, -1))
