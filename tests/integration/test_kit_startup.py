"""Start-up of the kit's services against real servers: each store's indexes are created
with at most one createIndexes per collection, all of them exist afterwards (FerretDB v1
silently leaves some out of a command that lists existing ones), the collections at
once, a restart sends no index twice, and /readyz says "ready" only once the indexes exist;
the event handlers' queues, declared without waiting for each answer (all handlers' with
one confirmation, each exchange once) and not declared again by the consumers' first
connection, still stop the start when the broker refuses one, and come back after a
reconnect when the broker lost them."""
import collections
import importlib
import itertools

import eventlet
import pytest
from amqp.channel import Channel
from amqp.exceptions import PreconditionFailed
from eventlet.event import Event
from kombu import Connection, Queue
from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection
from pymongo.errors import OperationFailure

from kit import mongo
from kit.batches import batch_event_handler
from kit.consumer import event_handler
from kit.migrations import Migration, Migrations
from kit.mongo import IndexBatch, Store
from tests.support.roundtrips import COMMANDS
from tests.support.things import TallyService, ThingsService, ThingStore
from tests.support.wait import wait_for

STORES = [("leads.store", "LeadsStore"), ("deals.store", "DealsStore"),
          ("metrics.store", "MetricsStore"), ("quotes.store", "QuotesStore"),
          ("support.store", "SupportStore"), ("notify.store", "NotifyStore"),
          ("webhooks.store", "WebhooksStore")]
INDEX_COMMANDS = ("createIndexes", "listIndexes", "listCollections")


def _index_commands(sent):
    return [(name, coll) for name, coll, _ in sent if name in INDEX_COMMANDS]


def _declared(monkeypatch):
    """Every index the stores' batches declare: {collection: {name: key document}}."""
    seen = {}
    create = IndexBatch.create

    def record(batch):
        for coll, models in batch.wanted.items():
            name = batch.db[coll].name
            seen.setdefault(name, {}).update(
                {index: dict(m.document["key"]) for index, m in models.items()})
        create(batch)

    monkeypatch.setattr(IndexBatch, "create", record)
    return seen


@pytest.mark.parametrize("module, cls", STORES, ids=[m.split(".")[0] for m, _ in STORES])
def test_a_store_creates_its_indexes_with_one_command_per_collection(
        monkeypatch, mongo_db, module, cls, make_config):
    store = getattr(importlib.import_module(module), cls)(mongo_db, make_config(
        module.split(".")[0]))
    declared = _declared(monkeypatch)
    COMMANDS.watch(mongo_db.name)
    store.ensure_indexes()
    fresh = _index_commands(COMMANDS.take())
    creates = [coll for name, coll in fresh if name == "createIndexes"]
    assert len(creates) == len(set(creates)), f"more than one createIndexes: {creates}"
    assert declared, "the store declares its indexes in an index batch"
    for coll, indexes in declared.items():
        info = mongo_db[coll].index_information()
        for name, key in indexes.items():
            assert name in info, f"{coll}.{name} was not created"
            assert [(k, int(v)) for k, v in info[name]["key"]] == list(key.items())
    # a restart: nothing is created twice, and FerretDB's createIndexes of several
    # existing indexes (which drops the connection) is never sent
    COMMANDS.watch(mongo_db.name)
    store.ensure_indexes()
    again = _index_commands(COMMANDS.take())
    creates = [coll for name, coll in again if name == "createIndexes"]
    assert len(creates) == len(set(creates))
    assert len(again) <= len(fresh) + len(declared)


def test_a_restart_sends_only_the_missing_indexes(mongo_db):
    with IndexBatch(mongo_db) as db:
        db.things.create_index("a")
        db.things.create_index("b")
    COMMANDS.watch(mongo_db.name)
    with IndexBatch(mongo_db) as db:
        db.things.create_index("a")
        db.things.create_index("b")
        db.things.create_index([("c", ASCENDING), ("_id", DESCENDING)], name="c_id")
        db.things.create_index("d")
    sent = [(name, what) for name, what, _ in COMMANDS.take()]
    assert sent == [("listCollections", 1), ("listIndexes", "things"),
                    ("createIndexes", "things")]
    assert set(mongo_db.things.index_information()) == {"_id_", "a_1", "b_1", "c_id", "d_1"}


def test_an_index_whose_name_is_taken_by_other_keys_is_refused(mongo_db):
    mongo_db.things.create_index("a", name="by_name")
    mongo_db.things.create_index("b")
    with pytest.raises(OperationFailure), IndexBatch(mongo_db) as db:
        db.things.create_index("z", name="by_name")
        db.things.create_index("b")


class SlowIndexes(ThingStore):
    """Index creation that fails (as with a database still electing a primary) until the
    test lets it pass."""

    failing = True
    done = []  # what happened, in order

    def ensure_indexes(self):
        if SlowIndexes.failing:
            raise OperationFailure("not yet")
        super().ensure_indexes()
        SlowIndexes.done.append("indexes")


class SlowThings(ThingsService):
    name = "things"
    store = Store(SlowIndexes)


def test_not_ready_until_the_indexes_exist(container_factory, make_config, api, mongo_db):
    SlowIndexes.failing = True
    config = make_config("leads")
    container = container_factory(SlowThings, config)
    container.start()
    client = api(config)
    assert client.get("/healthz").status_code == 200
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["checks"] == {"mongodb": "ok", "indexes": "pending", "amqp": "ok"}
    SlowIndexes.failing = False
    assert wait_for(lambda: client.get("/readyz").status_code == 200)
    assert "name_1" in mongo_db.things.index_information()


def test_a_started_container_has_its_indexes(container_factory, make_config, api, mongo_db):
    container = container_factory(ThingsService, make_config("leads"))
    container.start()  # the first try is part of the start: ready at once
    store = next(d for d in container.dependencies if isinstance(d, Store))
    assert store.indexes_ready
    assert {"name_1", mongo.SINCE + "_1"} <= set(mongo_db.things.index_information())


def test_the_store_names_its_indexes_as_pymongo_does(mongo_db):
    batch = IndexBatch(mongo_db)
    names = [batch.things.create_index("a"),
             batch.things.create_index([("b", ASCENDING), ("c", DESCENDING)])]
    assert names == ["a_1", "b_1_c_-1"]
    assert list(itertools.chain(*batch.wanted.values())) == names


def test_a_queue_the_broker_refuses_still_stops_the_start(container_factory, make_config):
    config = make_config("leads")
    queue = "evt-leads-lead.created--tally.handle_leads_lead_created"
    with Connection(config["AMQP_URI"]) as conn:  # the first retry queue, with another delay
        Queue(f"{queue}.retry.1", durable=True,
              queue_arguments={"x-message-ttl": 1, "x-queue-version": 2})(conn.channel()).declare()
    container = container_factory(TallyService, config)
    with pytest.raises(PreconditionFailed):
        container.start()


def test_the_handlers_queues_exist_and_are_bound_once_started(
        container_factory, make_config, rabbit_config, rabbit_manager):
    config = make_config("leads")
    container_factory(TallyService, config).start()
    queue = "evt-leads-lead.created--tally.handle_leads_lead_created"
    vhost = rabbit_config["vhost"]
    names = {q["name"] for q in rabbit_manager.get_queues(vhost)}
    assert {queue, f"{queue}.retry.1", f"{queue}.retry.5", f"{queue}.dlq"} <= names
    # bound: an event published now waits in the queue for the handler
    assert any(b["source"] == "leads.events" and b["routing_key"] == "lead.created"
               for b in rabbit_manager.get_queue_bindings(vhost, queue))


def _shout(doc):
    SlowIndexes.done.append("migration")
    return {"name": doc["name"].upper()} if doc["name"] != doc["name"].upper() else None


class MigratingThings(ThingsService):
    name = "things"
    store = Store(SlowIndexes)
    migrations = Migrations([Migration("things-upper", "things", ("name",), _shout, walk="name",
                                       floor="")])


def test_migrations_wait_for_the_indexes(container_factory, make_config, api, mongo_db):
    """A migration walks by the indexes, and its writes would take turns with the index
    creation that /readyz waits for."""
    SlowIndexes.failing, SlowIndexes.done = True, []
    mongo_db.things.insert_one({"_id": "t1", "name": "quiet", "version": 1})
    config = make_config("leads")
    container = container_factory(MigratingThings, config)
    container.start()
    client = api(config)
    assert client.get("/readyz").status_code == 503
    SlowIndexes.failing = False
    ran = next(d for d in container.extensions if isinstance(d, Migrations))
    assert wait_for(lambda: ran.finished)
    assert mongo_db.things.find_one({"_id": "t1"})["name"] == "QUIET"
    assert SlowIndexes.done[0] == "indexes", SlowIndexes.done


def test_the_collections_get_their_indexes_at_once(monkeypatch, mongo_db):
    """A fresh database creates a collection per createIndexes: a start waits for the
    slowest, not for their sum."""
    create, started, all_started, went = Collection.create_indexes, [], Event(), []

    def create_indexes(coll, models, *args, **kwargs):
        started.append(coll.name)
        if len(started) == 3:
            all_started.send()
        with eventlet.Timeout(5, False):  # one after the other, the first would wait in vain
            all_started.wait()
        went.append(all_started.ready())
        return create(coll, models, *args, **kwargs)

    monkeypatch.setattr(Collection, "create_indexes", create_indexes)
    with IndexBatch(mongo_db) as db:
        for name in ("a", "b", "c"):
            db[name].create_index("x")
    assert all(went), f"created one after the other: {started}"
    assert all("x_1" in mongo_db[name].index_information() for name in ("a", "b", "c"))


class Declaring:
    """Handlers of two producers, batched and single, as a projection has them."""

    name = "declaring"

    @batch_event_handler("leads", ("lead.created", "lead.assigned", "lead.contacted"))
    def on_leads(self, events):
        pass

    @batch_event_handler("deals", ("deal.created", "deal.won"))
    def on_deals(self, events):
        pass

    @event_handler("leads", "lead.qualified")
    def on_qualified(self, event):
        pass


def _amqp_declarations(monkeypatch):
    """[(method, name, nowait, passive)] of every declaration and binding sent."""
    sent = []
    for method in ("exchange_declare", "queue_declare", "queue_bind"):
        def record(channel, *args, _method=method, _original=getattr(Channel, method),
                   **kwargs):
            name = kwargs.get("exchange" if _method == "exchange_declare" else "queue",
                              args[0] if args else None)
            sent.append((_method, name, kwargs.get("nowait", False),
                         kwargs.get("passive", False)))
            return _original(channel, *args, **kwargs)
        monkeypatch.setattr(Channel, method, record)
    return sent


def test_a_start_waits_for_one_answer_to_all_its_queue_declarations(
        monkeypatch, container_factory, make_config, rabbit_config, rabbit_manager):
    """kombu declares a binding's exchange again for each binding and waits for the answer,
    and nameko's consumers declare their queues again when they connect: a projection
    bound to many event types paid a round trip per type, twice."""
    sent = _amqp_declarations(monkeypatch)
    container_factory(Declaring, make_config("leads")).start()
    waited = [s for s in sent if not s[2]]
    assert waited == [("queue_declare", waited[0][1], False, True)], waited
    exchanges = collections.Counter(name for method, name, *_ in sent
                                    if method == "exchange_declare")
    assert exchanges == {"leads.events": 1, "deals.events": 1}
    binds = [name for method, name, *_ in sent if method == "queue_bind"]
    assert sorted(binds) == sorted(["evt-leads-batch--declaring.on_leads"] * 3
                                   + ["evt-deals-batch--declaring.on_deals"] * 2
                                   + ["evt-leads-lead.qualified--declaring.on_qualified"])
    vhost = rabbit_config["vhost"]
    bound = {b["routing_key"] for b in rabbit_manager.get_queue_bindings(
        vhost, "evt-leads-batch--declaring.on_leads") if b["source"] == "leads.events"}
    assert bound == {"lead.created", "lead.assigned", "lead.contacted"}


def test_a_consumer_that_reconnects_declares_its_queue_again(
        container_factory, make_config, rabbit_config, rabbit_manager):
    """Its first connection leaves the declaring to the start; a broker that lost the
    queue later (a node wiped) gets it back from the consumer's reconnection."""
    container_factory(Declaring, make_config("leads")).start()
    queue, vhost = "evt-deals-batch--declaring.on_deals", rabbit_config["vhost"]
    with Connection(rabbit_config["AMQP_URI"]) as conn:
        conn.channel().queue_delete(queue)  # the consumer is cancelled and reconnects
    assert wait_for(lambda: any(
        b["source"] == "deals.events" and b["routing_key"] == "deal.won"
        for b in rabbit_manager.get_queue_bindings(vhost, queue)))
