"""A subscription whose endpoint keeps failing is turned off after the configured run of
failures (or at once on 410 Gone), says so with webhook.subscription_disabled, and sends
again once an admin turns it back on."""
import datetime as dt
import uuid

import eventlet
import pytest

from kit.fields import utcnow
from tests.integration.webhooks.webhooks_support import (
    assigned,
    publish,
    start_webhooks,
    subscribe,
    wait_received,
    webhooks_config,
)
from tests.support.wait import wait_for
from webhooks.streamreader import StreamMissing, read_range


def _disabled_events(config, since):
    found = read_range(config["AMQP_URI"], "webhooks.events.stream", since, utcnow(),
                       margin=dt.timedelta(seconds=1), idle=0.5, prefetch=100)
    return [event for _, event in found if event["type"] == "webhook.subscription_disabled"]


@pytest.mark.parametrize("status, reason", [
    (500, "3 failed attempts in a row"),
    (410, "410 Gone"),
])
def test_a_failing_subscription_is_turned_off_and_says_so(
        container_factory, make_config, api, receiver, status, reason):
    started = utcnow()
    config = webhooks_config(make_config, retry={
        "first_delay_seconds": 0.1, "factor": 1, "max_delay_seconds": 0.1,
        "give_up_after_hours": 24, "disable_after_failures": 3, "disable_after_hours": 72})
    start_webhooks(container_factory, config)
    http = api(config)
    sub = subscribe(http, receiver, "lead.assigned")
    receiver.answer(status)
    lead = str(uuid.uuid4())
    publish(config, [assigned(lead, 1)])

    def off():
        doc = http.get(f"/api/v1/subscriptions/{sub['id']}").json()
        return not doc["enabled"] and doc
    doc = wait_for(off, 20)
    assert doc, "the subscription stayed on"
    assert reason in doc["disabled_reason"]
    attempts = len(receiver.wire)
    assert attempts == (3 if status == 500 else 1)

    events = wait_for(lambda: _disabled_events(config, started), 15, ignore=(StreamMissing,))
    assert [(e["subject"], e["data"]["automatic"]) for e in events] == [(sub["id"], True)]
    assert reason in events[0]["data"]["reason"]

    # turned on again, the waiting delivery goes (a 410 gave its delivery up: redeliver)
    receiver.answer(200)
    assert http.post(f"/api/v1/subscriptions/{sub['id']}/enable").json()["enabled"]
    if status == 410:
        resp = http.post(f"/api/v1/subscriptions/{sub['id']}/redeliver",
                         json={"since": started.isoformat()})
        assert resp.json()["deliveries"] == 1, resp.text
    assert wait_for(lambda: any(ev["subject"] == lead
                                for _, ev in receiver.wire[attempts:]), 20)


def test_an_admin_turns_a_subscription_off_and_nothing_is_queued_meanwhile(
        container_factory, make_config, api, receiver, mongo_db):
    config = webhooks_config(make_config)
    start_webhooks(container_factory, config)
    http = api(config)
    sub = subscribe(http, receiver, "lead.assigned")
    resp = http.post(f"/api/v1/subscriptions/{sub['id']}/disable")
    assert resp.status_code == 200 and resp.json()["enabled"] is False
    assert resp.json()["disabled_reason"] == "turned off by ada"
    first = assigned(str(uuid.uuid4()), 1)
    publish(config, [first])
    # (with no subscription on, the intake reads nothing; once one is on, it reads from a
    # little before, `first` included, and the event's time keeps it out)
    eventlet.sleep(0.5)
    http.post(f"/api/v1/subscriptions/{sub['id']}/enable")
    second = assigned(str(uuid.uuid4()), 1)
    publish(config, [second])
    assert wait_received(receiver, [second["id"]])
    assert [event["id"] for _, event in receiver.wire] == [second["id"]]


def test_once_the_last_subscription_is_off_the_stream_is_left_and_nothing_more_written(
        container_factory, make_config, api, receiver, mongo_db):
    config = webhooks_config(make_config)
    start_webhooks(container_factory, config)
    http = api(config)
    sub = subscribe(http, receiver, "lead.assigned")
    first = assigned(str(uuid.uuid4()), 1)
    publish(config, [first])
    assert wait_received(receiver, [first["id"]])
    leads = {"_id": "leads.events.stream"}
    assert wait_for(lambda: "offset" in (mongo_db.offsets.find_one(leads) or {}))

    http.post(f"/api/v1/subscriptions/{sub['id']}/disable")
    # the reader notices when it would renew its lease, and the stream's offset goes
    assert wait_for(lambda: "offset" not in mongo_db.offsets.find_one(leads), 10)
    left = list(mongo_db.offsets.find({}).sort("_id", 1))
    eventlet.sleep(3)  # longer than a lease's renewal: a reader would have written
    assert list(mongo_db.offsets.find({}).sort("_id", 1)) == left

    http.post(f"/api/v1/subscriptions/{sub['id']}/enable")
    second = assigned(str(uuid.uuid4()), 1)
    publish(config, [second])
    assert wait_received(receiver, [first["id"], second["id"]])


def test_the_intake_looks_on_through_a_database_outage_and_leaves_the_stream_after_it(
        container_factory, make_config, api, receiver, mongo_db, database_proxy):
    config = webhooks_config(make_config)
    config["MONGO_URI"] = database_proxy.uri
    start_webhooks(container_factory, config)
    http = api(config)
    sub = subscribe(http, receiver, "lead.assigned")
    first = assigned(str(uuid.uuid4()), 1)
    publish(config, [first])
    assert wait_received(receiver, [first["id"]])
    leads = {"_id": "leads.events.stream"}
    assert wait_for(lambda: "offset" in (mongo_db.offsets.find_one(leads) or {}))

    http.post(f"/api/v1/subscriptions/{sub['id']}/disable")
    # longer than the driver's wait for a server (3 s): the intake's looks fail meanwhile
    database_proxy.down()
    eventlet.sleep(4.5)
    database_proxy.up()
    assert wait_for(lambda: "offset" not in mongo_db.offsets.find_one(leads), 15)

    assert http.post(f"/api/v1/subscriptions/{sub['id']}/enable").status_code == 200
    second = assigned(str(uuid.uuid4()), 1)
    publish(config, [second])
    assert wait_received(receiver, [first["id"], second["id"]])
    assert [event["id"] for _, event in receiver.wire] == [first["id"], second["id"]]
