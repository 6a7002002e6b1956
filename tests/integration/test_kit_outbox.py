"""The outbox: nothing lost when the broker is down, nothing applied twice after a crash."""

import datetime as dt
import re

import eventlet
import pika
import pytest
from cloudevents.core.bindings import rabbitmq
from cloudevents.core.formats.json import JSONFormat
from kombu import Connection
from nameko.standalone.rpc import ClusterRpcProxy

from kit.amqp import ConfirmingPublisher
from kit.events import new_event
from kit.outbox import OutboxRelay
from tests.support.amqp import Subscriber
from tests.support.roundtrips import COMMANDS
from tests.support.things import TallyService, ThingsRpcService, ThingsService
from tests.support.wait import wait_for


def test_event_is_published_right_after_the_write(container_factory, make_config, api,
                                                  rabbit_config, mongo_db):
    config = make_config("leads", OUTBOX={"sweep_interval_seconds": 30})
    sub = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.created")
    container = container_factory(ThingsService, config)
    container.start()

    resp = api(config).post("/api/v1/things", json={"name": "a"})
    assert resp.status_code == 201, resp.text
    thing_id = resp.json()["id"]

    [event] = sub.drain(expect=1, timeout=5)
    assert event["subject"] == thing_id and event["type"] == "lead.created"
    assert event["source"] == "/dealflow/leads" and event["dealflowsequence"] == 1
    # removed from the outbox once confirmed
    assert wait_for(lambda: mongo_db.things.find_one({"_id": thing_id})["outbox"] == [])
    sub.close()


def test_write_succeeds_with_broker_down_and_event_follows_when_it_returns(
        container_factory, make_config, api, rabbit_config, broker_proxy, mongo_db):
    config = make_config("leads")
    config["AMQP_URI"] = broker_proxy.uri
    sub = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.created")
    container = container_factory(ThingsService, config)
    container.start()

    broker_proxy.down()
    resp = api(config).post("/api/v1/things", json={"name": "while-down"})
    assert resp.status_code == 201, resp.text
    thing_id = resp.json()["id"]
    eventlet.sleep(1.5)  # several relay attempts fail meanwhile
    assert len(mongo_db.things.find_one({"_id": thing_id})["outbox"]) == 1
    assert sub.drain(timeout=0.5) == []

    broker_proxy.up()  # same port; the service is not restarted
    [event] = sub.drain(expect=1, timeout=15)
    assert event["subject"] == thing_id
    assert wait_for(lambda: mongo_db.things.find_one({"_id": thing_id})["outbox"] == [])
    sub.close()


class CrashAfterPublish(Exception):
    pass


class CrashingRelay(OutboxRelay):
    """Publishes, then dies before it removes what it published."""

    def remove_many(self, coll, published, extra=None):
        raise CrashAfterPublish()


def test_relay_killed_between_publish_and_removal_republishes_and_consumer_applies_once(
        container_factory, make_config, rabbit_config, mongo_client, mongo_db_name):
    # no relay in this container: the test drives relays by hand
    things_config = make_config("leads", OUTBOX={"relay_enabled": False})
    tally_config = make_config("metrics", MONGO_DATABASE=mongo_db_name + "_tally")
    tally = container_factory(TallyService, tally_config)
    tally.start()
    things = container_factory(ThingsRpcService, things_config)
    things.start()

    with ClusterRpcProxy(things_config) as rpc:
        thing_id = rpc.things.create("crash")
    db = mongo_client[mongo_db_name]
    [event] = db.things.find_one({"_id": thing_id})["outbox"]

    publisher = ConfirmingPublisher(rabbit_config["AMQP_URI"])
    with pytest.raises(CrashAfterPublish):
        CrashingRelay(db, ["things"], publisher, grace_seconds=0).sweep()
    assert db.things.find_one({"_id": thing_id})["outbox"] == [event]

    # a new relay (after the restart) finds the leftover and publishes it again
    sent = OutboxRelay(db, ["things"], publisher, grace_seconds=0).sweep()
    assert sent == 1
    assert db.things.find_one({"_id": thing_id})["outbox"] == []

    tally_db = mongo_client[mongo_db_name + "_tally"]
    store = next(d for d in tally.dependencies if d.attr_name == "store").store
    assert wait_for(lambda: store.attempts(event["id"]) == 2 and store.tally() == 1)
    eventlet.sleep(0.3)
    assert store.attempts(event["id"]) == 2, "delivered twice"
    assert store.tally() == 1, "applied once"
    publisher.close()
    mongo_client.drop_database(tally_db.name)


def test_events_of_concurrent_writes_are_published_in_batches_without_loss(
        container_factory, make_config, rabbit_config, mongo_db):
    config = make_config("leads")
    sub = Subscriber(rabbit_config["AMQP_URI"], "leads", "#")
    container = container_factory(ThingsRpcService, config)
    container.start()

    with ClusterRpcProxy(config) as rpc:
        ids = [rpc.things.create.call_async(f"n{i}") for i in range(100)]
        ids = [r.result() for r in ids]
        versions = [rpc.things.rename.call_async(i, f"r-{i}") for i in ids[:50]]
        assert [v.result() for v in versions] == [2] * 50

    events = sub.drain(expect=150, timeout=30)
    events += sub.drain(timeout=1)  # anything beyond 150 would be a duplicate
    assert len(events) == 150
    assert {e["subject"] for e in events if e["type"] == "lead.created"} == set(ids)
    seqs = {(e["subject"], e["dealflowsequence"]) for e in events}
    assert len(seqs) == 150
    # the relay removes what it published once the broker confirmed it
    assert wait_for(lambda: mongo_db.things.count_documents(
        {"outbox_since": {"$exists": True}}) == 0)
    sub.close()


def outbox_age(api_client):
    text = api_client.get("/metrics").text
    found = re.search(r'^dealflow_outbox_oldest_seconds\{service="things"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else None


def test_the_age_of_the_oldest_waiting_event_is_exposed_while_the_broker_is_down(
        container_factory, make_config, api, rabbit_config, broker_proxy, mongo_db):
    config = make_config("leads")
    config["AMQP_URI"] = broker_proxy.uri
    container = container_factory(ThingsService, config)
    container.start()
    http = api(config)
    assert outbox_age(http) == 0.0

    broker_proxy.down()
    assert http.post("/api/v1/things", json={"name": "stuck"}).status_code == 201
    # the sweep notes the waiting event, and its age grows while it waits
    assert wait_for(lambda: (outbox_age(http) or 0) >= 1.0)

    broker_proxy.up()
    assert wait_for(lambda: mongo_db.things.count_documents(
        {"outbox_since": {"$exists": True}}) == 0)
    assert wait_for(lambda: outbox_age(http) == 0.0)


def test_no_outbox_age_where_this_instance_does_not_relay(container_factory, make_config,
                                                          api):
    config = make_config("leads", OUTBOX={"relay_enabled": False})
    container_factory(ThingsService, config).start()
    assert outbox_age(api(config)) is None


def test_relayed_events_are_cloudevents_by_the_sdk(container_factory, make_config, api,
                                                   rabbit_config):
    config = make_config("leads")
    sub = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.created")
    container_factory(ThingsService, config).start()
    assert api(config).post("/api/v1/things", json={"name": "ce"}).status_code == 201
    assert wait_for(lambda: sub.queue(sub.conn.channel()).queue_declare(passive=True)[1] == 1)

    amqp = Connection(rabbit_config["AMQP_URI"])
    connection = pika.BlockingConnection(pika.ConnectionParameters(
        host=amqp.hostname, port=amqp.port or 5672, virtual_host=amqp.virtual_host,
        credentials=pika.PlainCredentials(amqp.userid, amqp.password)))
    method, props, body = connection.channel().basic_get(sub.queue.name, auto_ack=True)
    connection.close()
    sub.close()
    assert props.content_type == "application/cloudevents+json"
    event = rabbitmq.from_rabbitmq(rabbitmq.RabbitMQMessage(
        headers=props.headers or {}, content_type=props.content_type, body=body),
        JSONFormat())  # validates CloudEvents 1.0, or raises
    assert event.get_type() == "lead.created" and event.get_source() == "/dealflow/leads"
    assert event.get_extension("dealflowsequence") == 1
    assert event.get_datacontenttype() == "application/json"


class _EventArrivesDuringPublish(ConfirmingPublisher):
    """The real publisher; while the batch is on its way, a write adds an event to one of
    the documents it came from."""

    def __init__(self, uri, collection, _id, event):
        super().__init__(uri)
        self.late = (collection, _id, event)

    def publish_batch(self, messages):
        super().publish_batch(messages)
        collection, _id, event = self.late
        collection.update_one({"_id": _id}, {"$push": {"outbox": event}})


def _followup_due(subject, task_id, sequence):
    return new_event("lead.followup_due", subject, {
        "lead_id": "l1", "task_id": task_id, "owner_id": None,
        "due_at": dt.datetime(2026, 11, 27, tzinfo=dt.UTC), "note": None}, sequence)


def test_a_batch_removal_keeps_an_event_that_arrived_while_it_was_published(
        rabbit_config, mongo_db):
    since = {"outbox_since": dt.datetime(2026, 11, 27, tzinfo=dt.UTC)}
    events = {n: _followup_due(f"t{n}", f"t{n}", 1) for n in range(3)}
    mongo_db.tasks.insert_many([{"_id": "t0", "outbox": [events[0]], **since},
                                {"_id": "t1", "outbox": [events[1]], **since}])
    publisher = _EventArrivesDuringPublish(rabbit_config["AMQP_URI"], mongo_db.tasks, "t1",
                                           events[2])
    try:
        assert OutboxRelay(mongo_db, ["tasks"], publisher).publish_entities(
            [("tasks", "t0"), ("tasks", "t1")]) == 2
    finally:
        publisher.close()
    done, grew = mongo_db.tasks.find_one({"_id": "t0"}), mongo_db.tasks.find_one({"_id": "t1"})
    assert done["outbox"] == [] and "outbox_since" not in done
    assert grew["outbox"] == [events[2]] and "outbox_since" in grew


def test_a_stale_write_answer_is_not_published_again(rabbit_config, mongo_db):
    """The relay takes an entity's outbox from its write's answer (kit.mongo `touched`):
    an answer that raced an earlier clear still shows events that are out already, and
    they go out once, with the newer one cleared by its own answer."""
    sub = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.followup_due")
    publisher = ConfirmingPublisher(rabbit_config["AMQP_URI"])
    relay = OutboxRelay(mongo_db, ["things"], publisher)
    first, second = (_followup_due("t1", f"t{n}", n) for n in (1, 2))
    mongo_db.things.insert_one({"_id": "t1", "outbox": [first]})
    written_first = mongo_db.things.find_one({"_id": "t1"})
    assert relay.publish_entities({("things", "t1"): written_first}) == 1
    mongo_db.things.update_one({"_id": "t1"}, {"$push": {"outbox": second}})
    # an answer written before the first clear landed: [first, second]
    stale = {**written_first, "outbox": [written_first["outbox"][0], second]}
    mongo_db.things.update_one({"_id": "t1"}, {"$set": {"outbox": [second]}})
    assert relay.publish_entities({("things", "t1"): stale}) == 1
    assert mongo_db.things.find_one({"_id": "t1"})["outbox"] == []
    events = sub.drain(expect=2, timeout=5) + sub.drain(timeout=0.5)
    assert [e["data"]["task_id"] for e in events] == ["t1", "t2"]
    publisher.close()
    sub.close()


def test_a_mark_left_with_nothing_to_publish_or_copy_is_swept_away(mongo_db):
    """A clear that lost a race to a write adding a log entry (kit.buckets) that was not
    due keeps `outbox_since`; the sweep then found the document every interval forever.
    It removes such a mark, and only while the outbox is empty and no entry came."""
    from kit.buckets import BucketLog

    log = BucketLog("history", "thing_history", size=7, recent=3)
    old = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    entry = {"at": old, "seq": 5}
    mongo_db.things.create_index("outbox_since")  # as a service's store declares it
    mongo_db.things.insert_many([
        {"_id": "stuck", "outbox": [], "outbox_since": old, "history": [entry],
         "history_count": 5, "history_flushed": 4},
        {"_id": "due", "outbox": [], "outbox_since": old,
         "history": [{**entry, "seq": n} for n in (3, 4, 5)], "history_count": 5,
         "history_flushed": 2}])
    relay = OutboxRelay(mongo_db, ["things"], publisher=None, logs={"things": log})
    assert relay.sweep(older_than=dt.timedelta(0)) == 0
    stuck, due = (mongo_db.things.find_one({"_id": _id}) for _id in ("stuck", "due"))
    assert "outbox_since" not in stuck and stuck["history_count"] == 5
    assert "outbox_since" not in due and due["history_flushed"] == 5  # copied, then cleared
    assert mongo_db.thing_history.count_documents({}) == 1


def test_a_copy_older_than_the_grace_is_read_again_and_not_published_twice(
        rabbit_config, mongo_db):
    """A relay that fell behind its writes (a bulk import) holds copies of documents whose
    events a sweep, here or on another instance, may have published and cleared since:
    each such copy is read again, and its events go out once. A copy younger than the
    grace is published as it is, without a read."""
    sub = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.followup_due")
    publisher = ConfirmingPublisher(rabbit_config["AMQP_URI"])
    now = dt.datetime.now(dt.UTC)
    mongo_db.things.create_index("outbox_since")  # as a service's store declares it
    events = {n: _followup_due(f"t{n}", f"t{n}", 1) for n in ("old", "new")}
    mongo_db.things.insert_many([
        {"_id": "old", "outbox": [events["old"]], "outbox_since": now - dt.timedelta(minutes=5)},
        {"_id": "new", "outbox": [events["new"]], "outbox_since": now}])
    copies = {("things", _id): mongo_db.things.find_one({"_id": _id}) for _id in ("old", "new")}
    try:
        swept = OutboxRelay(mongo_db, ["things"], publisher, grace_seconds=60).sweep()
        assert swept == 1  # the old one, by a sweep elsewhere
        behind = OutboxRelay(mongo_db, ["things"], publisher, grace_seconds=60)
        COMMANDS.watch(mongo_db.name)
        assert behind.publish_entities(copies) == 1
        reads = [c for c in COMMANDS.take() if c[0] == "find"]
    finally:
        publisher.close()
    events_out = sub.drain(expect=2, timeout=5) + sub.drain(timeout=0.5)
    sub.close()
    assert sorted(e["data"]["task_id"] for e in events_out) == ["tnew", "told"]
    assert len(reads) == 1 and reads[0][1] == "things"  # the old copy's, by _id
    assert all(d["outbox"] == [] for d in mongo_db.things.find())


def test_a_relay_behind_its_writes_keeps_a_bounded_hand_off_and_publishes_each_event_once(
        rabbit_config, mongo_db):
    """A bulk write touches more entities than the store keeps copies of
    (OUTBOX.handoff_documents): the rest are handed over as ids, read by the relay in
    batches, and every event goes out once, each outbox cleared."""
    from kit.mongo import BaseStore

    store = BaseStore(mongo_db, {"OUTBOX": {"handoff_documents": 10}})
    now = dt.datetime.now(dt.UTC)
    docs = [{"_id": f"t{n}", "outbox": [_followup_due(f"t{n}", f"t{n}", 1)],
             "outbox_since": now} for n in range(40)]
    mongo_db.things.insert_many(docs)
    for doc in docs:
        store.touched("things", doc["_id"], doc)
    refs = store.drain_touched()
    assert sum(doc is not None for doc in refs.values()) == 10
    assert len(refs) == 40
    sub = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.followup_due")
    publisher = ConfirmingPublisher(rabbit_config["AMQP_URI"])
    try:
        COMMANDS.watch(mongo_db.name)
        assert OutboxRelay(mongo_db, ["things"], publisher, batch_size=20) \
            .publish_entities(refs) == 40
        reads = [c for c in COMMANDS.take() if c[0] == "find"]
    finally:
        publisher.close()
    events = sub.drain(expect=40, timeout=10) + sub.drain(timeout=0.5)
    sub.close()
    assert sorted(e["data"]["task_id"] for e in events) == sorted(d["_id"] for d in docs)
    assert len(reads) == 2  # the 30 handed over as ids, in batches of 20
    assert all(d["outbox"] == [] for d in mongo_db.things.find())
