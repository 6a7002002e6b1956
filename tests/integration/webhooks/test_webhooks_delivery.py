"""Webhooks on a real RabbitMQ and FerretDB, to a local endpoint that verifies each
delivery with the Standard Webhooks library: events from the producers' streams reach it
signed, in order per entity, once per delivery id, also after it was down for a while;
two instances send each delivery once; a range is sent again from the streams."""
import datetime as dt
import uuid

import eventlet

from kit.fields import utcnow
from tests.conftest import free_port
from tests.integration.webhooks.webhooks_support import (
    assigned,
    publish,
    received_ids,
    start_webhooks,
    subscribe,
    updated,
    wait_received,
    webhooks_config,
)
from tests.support.wait import wait_for


def _history(leads, first, last):
    """Each lead's assignments `first`..`last`, with an edit (a type the subscription does
    not take) after each: the entity's sequences have gaps for the subscriber."""
    events = []
    for seq in range(first, last + 1):
        for lead in leads:
            events.append(assigned(lead, 2 * seq - 1, owner=f"rep-{seq}"))
            events.append(updated(lead, 2 * seq))
    return events


def _in_order_per_entity(receiver, leads):
    for lead in leads:
        sequences = [e["dealflowsequence"] for _, e in receiver.received if e["subject"] == lead]
        assert sequences == sorted(sequences), (lead, sequences)


def test_a_receiver_down_for_a_while_gets_every_event_after_it_returns(
        container_factory, make_config, api, receiver):
    config = webhooks_config(make_config)
    start_webhooks(container_factory, config)
    http = api(config)
    sub = subscribe(http, receiver, "lead.assigned")
    leads = [str(uuid.uuid4()) for _ in range(5)]

    before = _history(leads, 1, 2)
    publish(config, before)
    wanted = [e["id"] for e in before if e["type"] == "lead.assigned"]
    assert wait_received(receiver, wanted)

    receiver.down()
    during = _history(leads, 3, 6)
    publish(config, during)
    wanted += [e["id"] for e in during if e["type"] == "lead.assigned"]

    def retrying():
        page = http.get(f"/api/v1/subscriptions/{sub['id']}/deliveries",
                        params={"status": "pending"}).json()["items"]
        return [d for d in page if d["attempts"] >= 2]
    assert wait_for(retrying, 30), "no delivery was retried while the receiver was down"
    receiver.up()

    assert wait_received(receiver, wanted)
    assert sorted(received_ids(receiver)) == sorted(wanted)  # every one, nothing else
    assert receiver.rejected == []  # every request verified with the secret
    _in_order_per_entity(receiver, leads)
    # once per delivery id: one webhook-id per event, the same on every retry
    by_id = {}
    for webhook_id, event in receiver.wire:
        assert by_id.setdefault(webhook_id, event["id"]) == event["id"]
    assert len(by_id) == len(wanted)
    failed = http.get(f"/api/v1/subscriptions/{sub['id']}").json()
    assert failed["enabled"] is True and failed["failures_in_a_row"] == 0


def _stream_reads(http):
    """How many events of leads' stream this instance's intake read."""
    for line in http.get("/metrics").text.splitlines():
        if line.startswith('dealflow_webhook_intake_events_total{stream="leads.events.stream"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_two_instances_send_each_delivery_once(container_factory, make_config, api,
                                               receiver):
    config = webhooks_config(make_config)
    other = {**config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"}
    instances = {"a": start_webhooks(container_factory, config),
                 "b": start_webhooks(container_factory, other)}
    http = {"a": api(config), "b": api(other)}
    subscribe(http["a"], receiver, "lead.assigned")
    leads = [str(uuid.uuid4()) for _ in range(10)]
    events = _history(leads, 1, 3)
    publish(config, events)
    wanted = [e["id"] for e in events if e["type"] == "lead.assigned"]
    assert wait_received(receiver, wanted)
    eventlet.sleep(1)  # lets a second send, if there were one, arrive before counting
    assert len(receiver.wire) == len(wanted)
    _in_order_per_entity(receiver, leads)
    # one instance reads the stream at a time
    reads = {name: _stream_reads(client) for name, client in http.items()}
    assert sorted(reads.values()) == [0.0, len(events)], reads

    # the reader stops: the other takes the stream over and reads on from its offset
    reader = max(reads, key=reads.get)
    instances[reader].stop()
    more = _history(leads, 4, 5)
    publish(config, more)
    wanted += [e["id"] for e in more if e["type"] == "lead.assigned"]
    assert wait_received(receiver, wanted)
    eventlet.sleep(1)
    assert len(receiver.wire) == len(wanted)
    _in_order_per_entity(receiver, leads)


def test_a_range_is_delivered_again_from_the_streams(container_factory, make_config, api,
                                                      receiver):
    config = webhooks_config(make_config)
    start_webhooks(container_factory, config)
    http = api(config)
    sub = subscribe(http, receiver, "lead.assigned")
    leads = [str(uuid.uuid4()) for _ in range(3)]
    early = _history(leads, 1, 2)
    publish(config, early)
    assert wait_received(receiver, [e["id"] for e in early if e["type"] == "lead.assigned"])
    # a whole second later (a stream is attached by timestamp in whole seconds)
    moment = utcnow().replace(microsecond=0) + dt.timedelta(seconds=1)
    eventlet.sleep((moment - utcnow()).total_seconds() + 0.01)
    late = _history(leads, 3, 4)
    publish(config, late)
    late_ids = [e["id"] for e in late if e["type"] == "lead.assigned"]
    assert wait_received(receiver, late_ids)
    sent_before = len(receiver.wire)

    resp = http.post(f"/api/v1/subscriptions/{sub['id']}/redeliver",
                     json={"since": moment.isoformat()})
    assert resp.status_code == 200, resp.text
    assert resp.json()["events"] == len(late_ids) and resp.json()["deliveries"] == len(late_ids)
    assert wait_for(lambda: len(receiver.wire) == sent_before + len(late_ids))
    again = [event["id"] for _, event in receiver.wire[sent_before:]]
    assert sorted(again) == sorted(late_ids)  # the range, none of the earlier events
    assert len(receiver.received) == len(receiver.seen)  # the receiver dropped them by id

    # a subscription made afterwards gets the range too
    newcomer = type(receiver)().start()
    try:
        other = subscribe(http, newcomer, "lead.assigned")
        resp = http.post(f"/api/v1/subscriptions/{other['id']}/redeliver",
                         json={"since": moment.isoformat()})
        assert resp.json()["deliveries"] == len(late_ids)
        assert wait_received(newcomer, late_ids)
        assert sorted(received_ids(newcomer)) == sorted(late_ids)
        _in_order_per_entity(newcomer, leads)
    finally:
        newcomer.stop()


def test_the_intake_resumes_from_its_stored_offset_and_dedupes_by_event_id(
        container_factory, make_config, api, receiver, mongo_db):
    config = webhooks_config(make_config)
    first = start_webhooks(container_factory, config)
    subscribe(api(config), receiver, "lead.assigned")
    lead = str(uuid.uuid4())
    one = assigned(lead, 1)
    publish(config, [one, one])  # a relay that crashed before removing its outbox
    assert wait_received(receiver, [one["id"]])
    assert wait_for(lambda: mongo_db.offsets.find_one({"_id": "leads.events.stream",
                                                       "offset": {"$gte": 1}}))
    first.stop()

    later = [assigned(lead, seq) for seq in (2, 3, 4)]
    publish(config, later)  # while no webhooks instance runs
    start_webhooks(container_factory, config)
    assert wait_received(receiver, [e["id"] for e in later])
    eventlet.sleep(0.5)
    assert [event["dealflowsequence"] for _, event in receiver.wire] == [1, 2, 3, 4]
    assert mongo_db.deliveries.count_documents({"subscription_id": {"$exists": True}}) == 4


def test_a_named_host_is_reached_at_the_address_that_was_checked(
        container_factory, make_config, api, receiver):
    config = webhooks_config(make_config, allow=["localhost"])
    start_webhooks(container_factory, config)
    http = api(config)
    resp = http.post("/api/v1/subscriptions", json={
        "url": f"http://localhost:{receiver.port}/hooks", "event_types": ["lead.assigned"]})
    assert resp.status_code == 201, resp.text
    receiver.secret = resp.json()["secret"]
    event = assigned(str(uuid.uuid4()), 1)
    publish(config, [event])
    assert wait_received(receiver, [event["id"]])
    webhook_id, _ = receiver.received[0]
    assert receiver.raw[webhook_id][1]["Host"] == f"localhost:{receiver.port}"


def test_a_retry_holds_back_its_own_entity_only(container_factory, make_config, api,
                                                receiver):
    config = webhooks_config(make_config)
    start_webhooks(container_factory, config)
    http = api(config)
    sub = subscribe(http, receiver, "lead.assigned")
    stuck, free = str(uuid.uuid4()), str(uuid.uuid4())
    receiver.refuse = lambda event: event["subject"] == stuck
    events = [assigned(lead, seq) for seq in (1, 2, 3) for lead in (stuck, free)]
    publish(config, events)
    assert wait_received(receiver, [e["id"] for e in events if e["subject"] == free])
    # the stuck entity's first event is being retried; its later ones wait behind it
    assert received_ids(receiver) == [e["id"] for e in events if e["subject"] == free]
    def pending():
        return http.get(f"/api/v1/subscriptions/{sub['id']}/deliveries",
                        params={"status": "pending"}).json()["items"]
    assert wait_for(lambda: [d for d in pending() if d["sequence"] == 1 and d["attempts"] >= 2])
    waiting = pending()
    assert {(d["subject"], d["sequence"]) for d in waiting} == {(stuck, 1), (stuck, 2),
                                                                 (stuck, 3)}
    assert all(d["attempts"] == 0 for d in waiting if d["sequence"] > 1)

    receiver.refuse = None
    assert wait_received(receiver, [e["id"] for e in events])
    _in_order_per_entity(receiver, [stuck, free])


def test_no_stream_is_read_without_a_subscription_and_a_new_one_misses_nothing(
        container_factory, make_config, api, receiver, mongo_db):
    """Every event read with no enabled subscription would be dropped: the intake reads
    none of it and writes nothing (an idle platform keeps its database idle). A
    subscription made later gets every event from its creation on, one published at once
    included, and none from before."""
    config = webhooks_config(make_config)
    start_webhooks(container_factory, config)
    http = api(config)
    lead = str(uuid.uuid4())
    publish(config, [assigned(lead, seq) for seq in (1, 2, 3)])
    eventlet.sleep(1)  # the intake looked several times meanwhile
    assert _stream_reads(http) == 0.0
    assert mongo_db.offsets.count_documents({}) == 0

    subscribe(http, receiver, "lead.assigned")
    after = [assigned(lead, seq) for seq in (4, 5)]
    publish(config, after)  # before the intake's next look
    assert wait_received(receiver, [e["id"] for e in after])
    eventlet.sleep(0.5)
    assert received_ids(receiver) == [e["id"] for e in after]
