"""The deals store's pipeline cache on the real database: the workers that find a pipeline
expired at once share one read of it, and a fresh read always goes to the database
(commands counted with a pymongo listener; each read is made slow, as a busy database
makes it, so that every worker asks while the first read is under way)."""
from unittest import mock

import eventlet
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import AutoReconnect

from deals import pipelines as P
from deals.store import DealsStore
from tests.conftest import MONGO_URI
from tests.support.roundtrips import COMMANDS

WORKERS = 20


def pipeline_reads(sent):
    return sum(1 for command, collection, _ in sent if (command, collection) == ("find",
                                                                                 "pipelines"))


def slow_find_one(collection, *args, **kwargs):
    eventlet.sleep(0.1)
    return REAL_FIND_ONE(collection, *args, **kwargs)


REAL_FIND_ONE = Collection.find_one


def test_workers_that_find_a_pipeline_expired_share_one_read(make_config, mongo_db):
    client = MongoClient(MONGO_URI, tz_aware=True)  # after the listener registered
    try:
        store = DealsStore(client[mongo_db.name],
                           make_config("deals", DEALS={"pipeline_cache_seconds": 3600}))
        store.seed_default_pipeline()
        COMMANDS.watch(mongo_db.name)
        pool = eventlet.GreenPool(WORKERS)
        with mock.patch.object(Collection, "find_one", slow_find_one):
            got = list(pool.imap(lambda _: store.get_pipeline(P.DEFAULT_PIPELINE_ID),
                                 range(WORKERS)))
        assert [p["_id"] for p in got] == [P.DEFAULT_PIPELINE_ID] * WORKERS
        assert pipeline_reads(COMMANDS.take()) == 1

        COMMANDS.watch(mongo_db.name)
        store.get_pipeline(P.DEFAULT_PIPELINE_ID)  # cached
        assert store.get_pipeline(P.DEFAULT_PIPELINE_ID, fresh=True)["version"] == 1
        assert pipeline_reads(COMMANDS.take()) == 1
    finally:
        client.close()


def test_a_failed_read_caches_nothing_and_the_next_worker_reads_again(make_config, mongo_db):
    client = MongoClient(MONGO_URI, tz_aware=True)
    try:
        store = DealsStore(client[mongo_db.name],
                           make_config("deals", DEALS={"pipeline_cache_seconds": 3600}))
        store.seed_default_pipeline()
        failures = [AutoReconnect("database down")]

        def failing_once(collection, *args, **kwargs):
            if failures:
                raise failures.pop()
            return slow_find_one(collection, *args, **kwargs)

        COMMANDS.watch(mongo_db.name)
        pool = eventlet.GreenPool(WORKERS)
        with mock.patch.object(Collection, "find_one", failing_once):
            outcomes = list(pool.imap(_pipeline_or_error(store), range(WORKERS)))
        # the worker whose read failed gets the error; the others share the next read
        assert sorted(map(str, outcomes)).count("database down") == 1
        assert outcomes.count(P.DEFAULT_PIPELINE_ID) == WORKERS - 1
        assert pipeline_reads(COMMANDS.take()) == 1
    finally:
        client.close()


def _pipeline_or_error(store):
    def ask(_):
        try:
            return store.get_pipeline(P.DEFAULT_PIPELINE_ID)["_id"]
        except AutoReconnect as exc:
            return exc
    return ask
