"""The replayable log on a real RabbitMQ (kit.streams): what producers publish stays in
`<service>.events.stream`, and a plain AMQP 0-9-1 client (pika, as an integrator would)
reads it from the beginning or from a moment, as docs/asyncapi.yaml describes."""
import datetime as dt
import json
import uuid

import eventlet
import pika
from kombu import Connection

from kit.amqp import ConfirmingPublisher
from kit.events import new_event
from kit.fields import utcnow
from kit.outbox import OutboxRelay, new_document
from kit.streams import since, stream_declarer
from tests.support.things import ThingsService
from tests.support.wait import wait_for

STREAM = "leads.events.stream"


def _relay(db, config):
    publisher = ConfirmingPublisher(config["AMQP_URI"], on_declare=stream_declarer(config))
    return publisher, OutboxRelay(db, ["things"], publisher, batch_size=500, grace_seconds=0)


def _history(subject, first, last):
    """Events `first`..`last` of one lead (its creation, then assignments)."""
    return [new_event("lead.created", subject, {
                "lead_id": subject, "name": "n", "source": "api", "score": 0, "grade": "D",
                "created_at": utcnow()}, 1) if seq == 1 else
            new_event("lead.assigned", subject, {"lead_id": subject, "owner_id": f"rep-{seq}",
                                                 "rule": "manual"}, seq)
            for seq in range(first, last + 1)]


def _write(db, events_by_subject):
    db.things.create_index("outbox_since")  # the relay's sweep looks by age (as kit.mongo)
    for subject, events in events_by_subject.items():
        db.things.update_one({"_id": subject}, {"$setOnInsert": new_document(
            {"name": subject}, [])}, upsert=True)
        db.things.update_one({"_id": subject}, {"$push": {"outbox": {"$each": events}},
                                                "$min": {"outbox_since": utcnow()}})


def _read_stream(amqp_uri, offset, until, prefetch=500):
    """Consume the stream with pika from `offset` ("first", an int, or a datetime) until
    `until(event)` holds; returns the events in stream order (an integrator's
    consumer, as docs/asyncapi.yaml shows it)."""
    conn = Connection(amqp_uri)
    params = pika.ConnectionParameters(
        host=conn.hostname, port=conn.port or 5672, virtual_host=conn.virtual_host,
        credentials=pika.PlainCredentials(conn.userid, conn.password))
    events = []
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=prefetch)  # a stream refuses a consumer without it
        for method, _, body in channel.consume(
                STREAM, arguments={"x-stream-offset": offset}, inactivity_timeout=10):
            assert method is not None, f"stream went quiet after {len(events)} events"
            channel.basic_ack(method.delivery_tag)
            events.append(json.loads(body))
            if until(events[-1]):
                break
        channel.cancel()
    finally:
        connection.close()
    return events


def test_a_subscriber_started_after_1000_events_reads_them_all_from_the_stream(
        make_config, mongo_db):
    config = make_config("leads")
    subjects = [str(uuid.uuid4()) for _ in range(100)]
    written = {subject: _history(subject, 1, 10) for subject in subjects}  # 1,000 events
    _write(mongo_db, written)
    publisher, relay = _relay(mongo_db, config)
    try:
        assert relay.sweep() == 1000
    finally:
        publisher.close()

    # the subscriber exists only now: no queue of its own held these events for it
    published = [ev["id"] for events in written.values() for ev in events]
    read = _read_stream(config["AMQP_URI"], "first", until=lambda ev: ev["id"] == published[-1])
    assert sorted(ev["id"] for ev in read) == sorted(published)
    for subject in subjects:
        assert [ev["dealflowsequence"] for ev in read if ev["subject"] == subject] == \
            list(range(1, 11))


def test_consuming_from_a_timestamp_gives_exactly_the_events_after_it_gap_free(
        make_config, mongo_db):
    config = make_config("leads")
    subjects = [str(uuid.uuid4()) for _ in range(5)]
    before = {s: _history(s, 1, 20) for s in subjects}
    _write(mongo_db, before)
    publisher, relay = _relay(mongo_db, config)
    try:
        assert relay.sweep() == 100
        # a whole second (an AMQP timestamp has no fraction) after the earlier events
        moment = utcnow().replace(microsecond=0) + dt.timedelta(seconds=1)
        eventlet.sleep((moment - utcnow()).total_seconds() + 0.01)
        after = {s: _history(s, 21, 40) for s in subjects}
        _write(mongo_db, after)
        assert relay.sweep() == 100
    finally:
        publisher.close()

    expected = [ev["id"] for events in after.values() for ev in events]
    read = _read_stream(config["AMQP_URI"], moment, until=lambda ev: ev["id"] == expected[-1])
    read = since(read, moment)
    assert [ev["id"] for ev in read] == expected
    for subject in subjects:  # gap-free per entity, from where the moment fell
        assert [ev["dealflowsequence"] for ev in read if ev["subject"] == subject] == \
            list(range(21, 41))


def test_a_service_publishes_into_its_stream(container_factory, make_config, api, mongo_db):
    config = make_config("leads")
    container = container_factory(ThingsService, config)
    container.start()
    resp = api(config).post("/api/v1/things", json={"name": "logged"})
    assert resp.status_code == 201, resp.text
    thing_id = resp.json()["id"]
    assert wait_for(lambda: mongo_db.things.find_one({"_id": thing_id})["outbox"] == [])

    read = _read_stream(config["AMQP_URI"], "first", until=lambda ev: ev["subject"] == thing_id)
    assert [(ev["subject"], ev["type"]) for ev in read] == [(thing_id, "lead.created")]


def test_a_stream_with_other_retention_is_bound_as_it_is(make_config, mongo_db):
    config = make_config("leads", STREAMS={"max_age": "90D"})
    with Connection(config["AMQP_URI"]) as conn:  # declared earlier with another max age
        conn.channel().queue_declare(STREAM, durable=True, auto_delete=False,
                                     arguments={"x-queue-type": "stream", "x-max-age": "7D"})
    subject = str(uuid.uuid4())
    _write(mongo_db, {subject: _history(subject, 1, 3)})
    publisher, relay = _relay(mongo_db, config)
    try:
        assert relay.sweep() == 3
    finally:
        publisher.close()
    read = _read_stream(config["AMQP_URI"], "first", until=lambda ev: ev["dealflowsequence"] == 3)
    assert [ev["dealflowsequence"] for ev in read] == [1, 2, 3]

