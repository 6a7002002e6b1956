"""Stalled deals: two instances run the timer, each stall is announced exactly once, and
activity on the deal starts a new stay that may stall again."""
from collections import Counter

import eventlet

from tests.integration.deals.deals_support import Client, start_deals, wait_for
from tests.support.amqp import Subscriber, distinct

# Discovery stalls after 14 "days"; a day lasts 20 ms here, so after 0.28 s.
FAST = {"DEALS": {"day_seconds": 0.02, "stall_check_interval_seconds": 0.05}}


def test_each_stall_is_announced_once_across_two_instances(container_factory, make_config,
                                                            api, rabbit_config, mongo_db):
    first = make_config("deals", **FAST)
    second = make_config("deals", **FAST)
    assert first["MONGO_DATABASE"] == second["MONGO_DATABASE"]
    sub = Subscriber(rabbit_config["AMQP_URI"], "deals", "deal.stalled")
    start_deals(container_factory, first)
    start_deals(container_factory, second)
    client = Client(api(first))
    other = api(second)

    deals = [client.create(name=f"D{i}", owner_id="rep-1") for i in range(12)]
    ids = {d["id"] for d in deals}
    assert wait_for(lambda: mongo_db.deals.count_documents(
        {"_id": {"$in": list(ids)}, "stalled_at": {"$ne": None}}) == 12)

    stalled = sub.drain(expect=12, timeout=30, distinct=True)
    stalled += sub.drain(timeout=1)  # several ticks later
    stalled = distinct(stalled)
    assert Counter(e["subject"] for e in stalled) == Counter(ids)
    assert {e["dealflowsequence"] for e in stalled} == {2}
    assert {e.get("actor") for e in stalled} == {"system:deals"}  # a timer's write
    event = stalled[0]["data"]
    assert (event["stage"], event["owner_id"]) == ("discovery", "rep-1")
    assert event["idle_days"] >= 14

    # activity ends the stall; the new stay stalls again later, once
    again = other.get(f"/api/v1/deals/{deals[0]['id']}").json()
    assert again["stalled_at"] is not None and again["version"] == 2
    again = client.must(again, "", {"needs_summary": "called back"}, method="patch")
    assert again["stalled_at"] is None
    [restalled] = sub.drain(expect=1, timeout=10)
    assert (restalled["subject"], restalled["dealflowsequence"]) == (again["id"], 4)
    assert sub.drain(timeout=1) == []
    sub.close()


def test_closed_deals_do_not_stall(container_factory, make_config, api, rabbit_config):
    config = make_config("deals", **FAST)
    sub = Subscriber(rabbit_config["AMQP_URI"], "deals", "deal.stalled")
    start_deals(container_factory, config)
    http = api(config)
    client = Client(http)
    deal = client.create(name="closing", amount="10", currency="EUR")
    while True:  # the timer may stall it first; then close the newer version
        deal = http.get(f"/api/v1/deals/{deal['id']}").json()
        resp = client.act(deal, "lost", {"reason": "timing"})  # (won would need every gate)
        if resp.status_code == 200:
            break
        assert resp.status_code == 409 and "changed meanwhile" in resp.json()["detail"]
    closed_version = resp.json()["version"]
    # a stall may have fired before the close, never after it (0.5 s = 25 "days")
    eventlet.sleep(0.5)
    assert all(e["dealflowsequence"] < closed_version for e in sub.drain(timeout=0.5))
    assert http.get(f"/api/v1/deals/{deal['id']}").json()["version"] == closed_version
    sub.close()
