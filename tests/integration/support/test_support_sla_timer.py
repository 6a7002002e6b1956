"""The SLA timer on two instances: each warning and each breach is emitted exactly once,
only due tickets are touched, and a ticket pending on the customer does not breach while
it waits (its clocks resume with what was left)."""
import datetime as dt
from collections import Counter

from tests.integration.support.support_helpers import (
    move,
    open_ticket,
    start_support,
    support_config,
    wait_for,
)
from tests.support.amqp import Subscriber, distinct

# urgent: 24x7, first response in 0.6 s, resolution in 1.2 s; normal: days (never due here)
FAST = {
    "SUPPORT": {"sla_check_interval_seconds": 0.05, "dispatch_interval_seconds": 0.2},
    "SLA": {"warning_fraction": 0.5, "policies": {"default": {
        "urgent": {"first_response_minutes": 0.01, "resolution_minutes": 0.02,
                   "calendar": "24x7"},
        "normal": {"first_response_minutes": 6000, "resolution_minutes": 60000,
                   "calendar": "24x7"}}}},
}


def at(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_each_warning_and_breach_once_across_two_instances(container_factory, make_config,
                                                            api, rabbit_config, mongo_db):
    first, second = support_config(make_config, **FAST), support_config(make_config, **FAST)
    sub = Subscriber(rabbit_config["AMQP_URI"], "support", "ticket.sla_warning")
    sub.conn.default_channel.queue_bind(sub.queue.name, "support.events",
                                        "ticket.sla_breached")
    start_support(container_factory, first)
    start_support(container_factory, second)
    http = api(first)
    urgent = [open_ticket(http, priority="urgent", subject=f"U{i}") for i in range(6)]
    calm = open_ticket(http, priority="normal")
    calm_revision = mongo_db.tickets.find_one({"_id": calm["id"]})["revision"]

    expected = 4 * len(urgent)  # warning + breach, first response + resolution
    # opened, assigned, status_changed and the four SLA events, all relayed
    assert wait_for(lambda: {t["version"] for t in mongo_db.tickets.find(
        {"priority": "urgent"})} == {7}, timeout=20)
    assert wait_for(lambda: mongo_db.tickets.count_documents({"outbox.0": {"$exists": True}})
                    == 0)
    # one read until the queue stays quiet (a read that stops at a count leaves the
    # messages kombu prefetched beyond it unacked on its channel, unseen by the next read)
    events = sub.drain(timeout=2)
    # the relay publishes at least once: two instances' relays may both send an outbox
    # before either removed it, with the same event id, which subscribers deduplicate by.
    # Emitted once means one event id per ticket, clock and threshold.
    events = distinct(events)
    counted = Counter((e["subject"], e["type"], e["data"]["kind"]) for e in events)
    assert len(events) == expected, counted
    assert set(counted.values()) == {1}
    assert {s for s, _, _ in counted} == {t["id"] for t in urgent}
    for event in events:
        if event["type"] == "ticket.sla_breached":
            assert at(event["data"]["breached_at"]) >= at(event["data"]["due_at"])
            assert event["actor"] == "system:support"
    # the calm ticket was never written by a timer: nothing of it was due
    assert mongo_db.tickets.find_one({"_id": calm["id"]})["revision"] == calm_revision
    assert mongo_db.tickets.count_documents({"sla_due_at": None}) == len(urgent)
    sub.close()


def test_pending_pauses_the_clocks(container_factory, make_config, api, rabbit_config,
                                   mongo_db):
    slow = {**FAST, "SLA": {**FAST["SLA"], "policies": {"default": {
        "urgent": {"first_response_minutes": 0.05, "resolution_minutes": 0.05,
                   "calendar": "24x7"}}}}}
    config = support_config(make_config, **slow)
    sub = Subscriber(rabbit_config["AMQP_URI"], "support", "ticket.sla_breached")
    start_support(container_factory, config)
    http = api(config)
    ticket = open_ticket(http, priority="urgent")
    pending = move(http, ticket, "pending").json()
    consumed = pending["sla"]["resolution"]["consumed_seconds"]
    assert pending["sla"]["resolution"]["running"] is False and consumed < 3
    assert mongo_db.tickets.find_one({"_id": ticket["id"]})["sla_due_at"] is None
    # the pause lasts longer than the whole target: nothing may breach meanwhile
    paused_until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)
    assert not wait_for(lambda: dt.datetime.now(dt.UTC) > paused_until and sub.drain(
        timeout=0.1), timeout=5)
    resumed = http.post(f"/api/v1/tickets/{ticket['id']}/replies",
                        json={"body": "here you are", "author": "customer"}).json()["ticket"]
    assert resumed["status"] == "open"
    due = at(resumed["sla"]["resolution"]["due_at"])
    assert due >= at(resumed["updated_at"]) + dt.timedelta(seconds=3 - consumed - 0.01)
    breaches = sub.drain(expect=2, timeout=10)
    assert sorted(e["data"]["kind"] for e in breaches) == ["first_response", "resolution"]
    for event in breaches:
        assert at(event["data"]["breached_at"]) >= due - dt.timedelta(seconds=0.01)
    sub.close()
