"""What a stage move costs the database, counted (a pymongo command listener), not timed:
read the deal once, one conditional write carrying its events, the audit trail's entry
(kit.audit: every authenticated write), one outbox clear; and a deal with 1,000 history
entries costs a move what a new deal does (its history lives in buckets, kit.buckets)."""
import datetime as dt
from decimal import Decimal

from deals import domain
from deals.store import DEALS, HISTORY
from tests.integration.deals.deals_support import Client, start_deals, store_of, wait_for
from tests.support.roundtrips import COMMANDS

QUIET = {"OUTBOX": {"sweep_interval_seconds": 3600},
         "TASKS": {"check_interval_seconds": 3600},
         "DEALS": {"stall_check_interval_seconds": 3600, "history_recent": 10,
                   "pipeline_cache_seconds": 3600}}


def settled(mongo_db, deal_id):
    """The relay has published the deal's events (and copied what was due)."""
    doc = mongo_db[DEALS].find_one({"_id": deal_id}, {"outbox": 1, "outbox_since": 1})
    # (the clear's last step unsets outbox_since: the relay is done with it)
    return doc is not None and doc["outbox"] == [] and "outbox_since" not in doc


def move(client, mongo_db, deal, stage):
    """A move over HTTP with the commands it sent, the relay's included."""
    COMMANDS.watch(mongo_db.name)
    deal = client.must(deal, "stage", {"stage": stage})
    assert wait_for(lambda: settled(mongo_db, deal["id"]))
    return deal, COMMANDS.take()


def shape(sent):
    return [(name, coll) for name, coll, _ in sent]


def test_a_stage_move_reads_once_writes_once_and_clears_its_outbox_once(
        container_factory, make_config, api, mongo_db):
    config = make_config("deals", **QUIET)
    start_deals(container_factory, config)
    client = Client(api(config))
    warm = client.create(amount="100.00", currency="EUR", checklist=["discovery_call_held"])
    assert wait_for(lambda: settled(mongo_db, warm["id"]))
    move(client, mongo_db, warm, "needs_confirmed")  # the pipeline is read (and kept)

    deal = client.create(amount="100.00", currency="EUR", checklist=["discovery_call_held"])
    assert wait_for(lambda: settled(mongo_db, deal["id"]))
    _, sent = move(client, mongo_db, deal, "needs_confirmed")
    # (no pipeline read: this instance keeps it; no relay read: the write's answer says
    # what its outbox holds)
    assert sorted(shape(sent)) == sorted([("find", DEALS), ("findAndModify", DEALS),
                                          ("insert", "audit"), ("update", DEALS)]), sent


def test_a_move_on_a_deal_with_1000_history_entries_sends_what_a_new_deal_s_does(
        container_factory, make_config, api, mongo_db):
    config = make_config("deals", **QUIET)
    container = start_deals(container_factory, config)
    store = store_of(container)
    client = Client(api(config))
    old = client.create(amount="1.00", currency="EUR", checklist=["discovery_call_held"])
    at = dt.datetime.now(dt.UTC)
    for first in range(1, 1000, 111):  # 999 edits in 9 writes: 1,000 entries in all
        store.change(old["id"], lambda deal, first=first: domain.Change(
            set={"amount": Decimal("1000.00")}, events=[], history=[
                {"at": at, "by": "u", "changes": {"amount": {"from": str(n), "to": str(n + 1)}}}
                for n in range(first, first + 111)]))
    assert wait_for(lambda: settled(mongo_db, old["id"]) and mongo_db[DEALS].find_one(
        {"_id": old["id"]})["history_flushed"] > 990, timeout=30)
    stored = mongo_db[DEALS].find_one({"_id": old["id"]})
    assert stored["history_count"] == 1000
    assert len(stored["history"]) < 2 * 10  # the rest is in buckets
    assert mongo_db[HISTORY].count_documents({"entity": old["id"]}) == 10

    new = client.create(amount="1000.00", currency="EUR", checklist=["discovery_call_held"])
    assert wait_for(lambda: settled(mongo_db, new["id"]))
    old = client.api.get(f"/api/v1/deals/{old['id']}").json()
    assert old["amount"] == new["amount"]
    # a move that copies no entries into buckets on either deal (one in `recent` does)
    assert (stored["history_count"] + 1 - stored["history_flushed"]) < 10

    _, on_new = move(client, mongo_db, new, "needs_confirmed")
    _, on_old = move(client, mongo_db, old, "needs_confirmed")
    assert sorted(shape(on_old)) == sorted(shape(on_new))
    on_old, on_new = sorted(on_old), sorted(on_new)
    # the same sizes but for the few bytes that numbers of another width take
    assert all(o[2] <= n[2] + 16 for o, n in zip(on_old, on_new, strict=True)), \
        (on_old, on_new)
