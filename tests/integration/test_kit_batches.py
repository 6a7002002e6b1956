"""Batched consumption (kit.batches) on real RabbitMQ and FerretDB: a batch is acked only
after the handler's write (a container killed mid-batch gets it again, and the keyed write
makes the second time change nothing), a full batch goes at once and a partial one after
the linger (or, eager, at once when no batch is in hand), a poison event is isolated and
dead-lettered alone, and messages that are no events are dead-lettered without holding up
the rest."""
import eventlet
import pytest
from eventlet.event import Event

from kit.amqp import ConfirmingPublisher, queue_depths
from kit.batches import BatchQueueConsumer, batch_event_handler
from kit.events import new_event
from kit.fields import utcnow
from kit.mongo import BaseStore, Store
from tests.integration.test_kit_consumer import dead_letters, send_raw
from tests.support.wait import wait_for

QUEUE = "evt-leads-batch--batches.record"
DLQ = QUEUE + ".dlq"
# a linger far beyond every wait below: a batch that arrives was flushed by its size
NEVER_MS = 600_000


class FactStore(BaseStore):
    def record(self, events):
        """One bulk write per batch, keyed by event id: an event delivered again matches
        its own fact and changes nothing."""
        self.db.command("update", "facts", updates=[
            {"q": {"_id": e["id"]}, "u": {"$setOnInsert": {"type": e["type"]}},
             "upsert": True} for e in events])

    def facts(self):
        return {doc["_id"]: doc["type"] for doc in self.db.facts.find()}


class BatchesService:
    name = "batches"
    store = Store(FactStore)
    handed = []  # the event ids of each batch the handler was given, in order
    written = []  # the same, of each batch whose write returned
    gate = None  # when set, the handler waits on it after its write
    poison = "poison"

    @batch_event_handler("leads", ("lead.created", "lead.assigned"))
    def record(self, events):
        type(self).handed.append([e["id"] for e in events])
        self.store.record([e for e in events if e["data"].get("name") != self.poison])
        type(self).written.append([e["id"] for e in events])
        if any(e["data"].get("name") == self.poison for e in events):
            raise RuntimeError("a poison event")
        if self.gate is not None:
            self.gate.wait()


def created(name="x"):
    return new_event("lead.created", "lead-1", {
        "lead_id": "lead-1", "name": name, "source": "api", "score": 0, "grade": "D",
        "created_at": utcnow()}, 1)


def assigned():
    return new_event("lead.assigned", "lead-1", {"lead_id": "lead-1", "owner_id": "u1",
                                                 "rule": "manual"}, 2)


@pytest.fixture
def publish(rabbit_config):
    publisher = ConfirmingPublisher(rabbit_config["AMQP_URI"])

    def send(*bodies):
        publisher.publish_batch([("leads.events", b["type"], b, {}) for b in bodies])

    yield send
    publisher.close()


@pytest.fixture
def batches(container_factory, make_config, monkeypatch):
    monkeypatch.setattr(BatchesService, "handed", [])
    monkeypatch.setattr(BatchesService, "written", [])
    monkeypatch.setattr(BatchesService, "gate", None)

    def start(size=5, linger_ms=NEVER_MS, eager=False, **overrides):
        config = make_config("metrics", BATCHES={"size": size, "linger_ms": linger_ms,
                                                 "prefetch": 2 * size, "eager": eager},
                             **overrides)
        container = container_factory(BatchesService, config)
        container.start()
        store = next(d for d in container.dependencies if d.attr_name == "store").store
        return container, store
    return start


def ids(*events):
    return [e["id"] for e in events]


def test_a_batch_is_acked_only_after_its_write_so_a_kill_mid_batch_redelivers_it(
        batches, publish):
    BatchesService.gate = Event()  # written, never returns: the batch is not acked
    first, store = batches()
    events = [created(str(n)) for n in range(5)]
    publish(*events)
    assert wait_for(lambda: len(store.facts()) == 5)
    assert BatchesService.handed == [ids(*events)]

    first.kill()
    BatchesService.gate = None
    _, store = batches(linger_ms=50)
    assert wait_for(lambda: len(BatchesService.handed) == 2)
    assert BatchesService.handed[1] == ids(*events)  # the same batch, delivered again
    later = created("later")
    publish(later)
    assert wait_for(lambda: len(store.facts()) == 6)
    assert store.facts() == {e["id"]: "lead.created" for e in [*events, later]}


BASIC_ACK = b"\x00\x3c\x00\x50"  # an AMQP method frame's class 60 (basic), method 80 (ack)


def test_a_batch_is_acked_in_one_socket_write(batches, publish, rabbit_config):
    BatchesService.gate = Event()  # written, held: not acked yet
    container, store = batches(size=40)
    events = [created(str(n)) for n in range(40)]
    publish(*events)
    assert wait_for(lambda: len(store.facts()) == 40)
    [consumer] = next(ext for ext in container.extensions
                      if isinstance(ext, BatchQueueConsumer))._consumers.values()
    transport = consumer.channel.connection.transport  # the consumer's own connection
    assert transport._read_ahead  # and it reads many frames per system call (kit.amqp)
    real, writes = transport._write, []

    def write(data):
        writes.append(bytes(data))
        return real(data)

    transport._write = write
    BatchesService.gate.send()
    assert wait_for(lambda: sum(w.count(BASIC_ACK) for w in writes) >= 40)
    assert [w.count(BASIC_ACK) for w in writes if BASIC_ACK in w] == [40]
    container.stop()  # anything left unacked would be ready again now
    assert queue_depths(rabbit_config["AMQP_URI"], [QUEUE])[QUEUE] == 0


def test_a_full_batch_goes_at_once_and_a_partial_one_after_the_linger(batches, publish,
                                                                     rabbit_config):
    first, store = batches(size=5)
    full = [created(str(n)) for n in range(10)]
    publish(*full)
    assert wait_for(lambda: len(store.facts()) == 10)
    assert BatchesService.handed == [ids(*full[:5]), ids(*full[5:])]

    first.stop()
    partial = [created("a"), assigned(), created("b")]  # several types, one queue
    _, lingering = batches(size=50, linger_ms=100)
    publish(*partial)
    assert wait_for(lambda: len(lingering.facts()) == 13)
    assert ids(*partial) in BatchesService.handed
    assert queue_depths(rabbit_config["AMQP_URI"], [QUEUE])[QUEUE] == 0


def test_eager_batches_go_at_once_when_none_is_in_hand_and_fill_while_one_is(
        batches, publish):
    BatchesService.gate = Event()  # the first batch is held after its write
    container, store = batches(size=50, eager=True)  # a linger that never ends
    lone = created("lone")
    publish(lone)
    assert wait_for(lambda: BatchesService.handed == [ids(lone)])

    later = [created(str(n)) for n in range(3)]
    publish(*later)
    [handler] = [e for e in container.entrypoints if e.method_name == "record"]
    assert wait_for(lambda: len(handler._pending) == 3)  # delivered while the first is held
    BatchesService.gate.send()
    assert wait_for(lambda: len(BatchesService.written) == 2)
    assert BatchesService.handed == [ids(lone), ids(*later)]
    assert store.facts() == {e["id"]: "lead.created" for e in [lone, *later]}


def test_an_event_delivered_again_in_or_after_its_batch_changes_nothing(batches, publish):
    _, store = batches(size=3)
    a, b = created("a"), created("b")
    publish(a, a, b)
    assert wait_for(lambda: len(BatchesService.handed) == 1)
    publish(a, b, a)
    assert wait_for(lambda: len(BatchesService.handed) == 2)
    # the handler notes a batch before its write: wait for the second write to return
    assert wait_for(lambda: len(BatchesService.written) == 2)
    assert store.facts() == {a["id"]: "lead.created", b["id"]: "lead.created"}


def test_a_poison_event_is_isolated_and_dead_lettered_alone(batches, publish, rabbit_config):
    # retried events come back one at a time: the linger hands each over
    _, store = batches(size=5, linger_ms=50,
                       CONSUMER={"max_retries": 2, "retry_delay_ms": 50})
    events = [created("ok1"), created("ok2"), created("poison"), created("ok3"),
              created("ok4")]
    poison = events[2]
    publish(*events)
    uri = rabbit_config["AMQP_URI"]
    assert wait_for(lambda: queue_depths(uri, [DLQ])[DLQ] == 1)
    [(props, body)] = dead_letters(uri, DLQ)
    assert poison["id"].encode() in body
    assert "a poison event" in props.headers["x-dealflow-error"]
    good = [e for e in events if e is not poison]
    assert store.facts() == {e["id"]: "lead.created" for e in good}
    # the batch, then each event alone; the poison alone again after each of its 2 retries
    assert BatchesService.handed[0] == ids(*events)
    singles = sorted(batch[0] for batch in BatchesService.handed[1:])
    assert singles == sorted(ids(*good) + [poison["id"]] * 3)
    eventlet.sleep(0.3)  # nothing more comes round
    assert len(BatchesService.handed) == 1 + 4 + 3


def test_messages_that_are_no_events_are_dead_lettered_and_the_rest_applied(
        batches, publish, rabbit_config):
    _, store = batches(size=3)  # the undecodable one never reaches a batch
    uri = rabbit_config["AMQP_URI"]
    bad = created()
    bad["data"]["grade"] = "Z"
    good = [created("a"), created("b")]
    send_raw(uri, b"not json", "application/json", queue=QUEUE)
    publish(good[0], bad, good[1])
    assert wait_for(lambda: queue_depths(uri, [DLQ])[DLQ] == 2)
    assert wait_for(lambda: len(store.facts()) == 2)
    assert BatchesService.handed == [ids(*good)]
    reasons = sorted(p.headers["x-dealflow-error"].split(":")[0]
                     for p, _ in dead_letters(uri, DLQ))
    assert reasons == ["malformed event", "undecodable message"]
