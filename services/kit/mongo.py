"""The MongoDB dependency provider: one client per container, one database per service.

Services inject `Store(TheirStore)` and get an instance of their own store class, which
holds that service's queries and nothing else. The provider also runs the outbox relay
for the store's collections: right after a write that carried events, and as a periodic
sweep for leftovers.
"""
import logging
import threading
import time
from functools import partial

import bson
import eventlet
from bson.codec_options import CodecOptions
from eventlet.event import Event
from nameko.extensions import DependencyProvider
from pymongo import IndexModel, MongoClient
from pymongo.errors import PyMongoError

from kit.amqp import ConfirmingPublisher, PublishError
from kit.config import setting
from kit.outbox import SINCE, OutboxRelay
from kit.prom import PromRegistry
from kit.streams import stream_declarer

log = logging.getLogger(__name__)


STORED = CodecOptions(tz_aware=True)


def as_stored(doc):
    """`doc` as the server keeps it (times to the millisecond): an inserted document
    handed to `touched`, whose outbox the relay's clear must then match exactly."""
    return bson.decode(bson.encode(doc), STORED)


class IndexBatch:
    """The indexes a store declares, created together when the block ends: at most one
    createIndexes per collection instead of one per index (a collection that exists and
    wants several is listed first, and only its missing indexes are sent: none on a
    restart). Used like the database:

        with IndexBatch(self.db) as db:
            db.leads.create_index("email_key", unique=True, name="email_key_unique")

    Several indexes go into one command only if none of them exists: FerretDB v1.24 drops
    the connection (a Go panic, "slice bounds out of range") on a createIndexes of several
    indexes that all exist, and silently leaves out new ones listed after two existing
    ones (one index alone, existing or not, is fine). An index that exists by name with
    other keys or uniqueness is sent anyway, so the server refuses the conflict as it
    refuses a single create_index."""

    def __init__(self, db):
        self.db = db
        self.wanted = {}  # collection name -> {index name: IndexModel}, as declared

    def __getitem__(self, collection):
        return _DeclaredIndexes(self.wanted.setdefault(collection, {}))

    def __getattr__(self, collection):
        if collection.startswith("_"):
            raise AttributeError(collection)
        return self[collection]

    def __enter__(self):
        return self

    def __exit__(self, kind, *_):
        if kind is None:
            self.create()

    def create(self):
        colls = {name: self.db[name] for name in self.wanted}
        several = [name for name, models in self.wanted.items() if len(models) > 1]
        # a collection that does not exist yet has no index to leave out: one listing of
        # the database spares a fresh one its listIndexes
        present = (set(colls[several[0]].database.list_collection_names()) if several
                   else set())
        # the collections at once, each on a connection of its own: a fresh database's
        # createIndexes each create a collection, and a start waits for them all
        names = list(self.wanted)
        failed = [exc for exc in eventlet.GreenPool(len(names) or 1).imap(
            _create, [colls[n] for n in names], [list(self.wanted[n].values()) for n in names],
            [present] * len(names)) if exc is not None]
        if failed:  # once every collection had its try
            raise failed[0]


def _create(coll, models, present):
    """One collection's indexes; the error, if any, is returned (a green thread that
    raises has its traceback printed by the hub besides)."""
    try:
        if len(models) > 1 and coll.name in present:
            existing = coll.index_information()
            models = [m for m in models if not _exists(existing, m.document)]
        if models:
            coll.create_indexes(models)
    except PyMongoError as exc:
        return exc
    return None


class _DeclaredIndexes:
    def __init__(self, models):
        self.models = models

    def create_index(self, keys, **options):
        model = IndexModel(keys, **options)
        self.models.setdefault(model.document["name"], model)
        return model.document["name"]


def _exists(existing, wanted):
    info = existing.get(wanted["name"])
    return (info is not None
            and _keys(info["key"]) == _keys(wanted["key"].items())
            and bool(info.get("unique")) == bool(wanted.get("unique")))


def _keys(pairs):
    # a server may answer a direction of 1 as 1.0
    return [(k, int(v) if isinstance(v, (int, float)) else v) for k, v in pairs]


class BaseStore:
    """Base for a service's store. Subclasses list `outbox_collections` and create their
    indexes in `ensure_indexes` (declared in an `index_batch()`); after a write that
    carried events they call `touched`."""

    outbox_collections = ()

    def __init__(self, db, config=None):
        # {collection: kit.buckets.BucketLog}: logs the relay copies into buckets
        self.bucket_logs = {}
        self.db = db
        self.config = config or {}
        self.outbox_indexed = False  # index_batch() declared the outbox indexes
        self._touched = {}
        # Copies of written documents the relay may publish without reading them again.
        # While the relay is behind (a bulk import writes faster than it publishes) only
        # this many are kept and the rest are ids it reads in batches: each copy holds its
        # whole outbox, and the copies grew with the relay's lag (10,000 seeded leads:
        # leads' peak RSS 230 MB with every copy kept, 209 MB with 2,000).
        self.handoff_documents = int(setting(self.config, "OUTBOX.handoff_documents", 2000))
        self._handed = 0
        self._wake = threading.Event()

    def ensure_indexes(self):
        """Create this service's indexes (idempotent)."""

    def index_batch(self):
        """An IndexBatch on this store's database that also holds the relay's index of
        each outbox collection: the outbox's age, which the sweep looks for (on MongoDB
        this keeps it from scanning the collection; FerretDB v1 scans whatever the index)."""
        batch = IndexBatch(self.db)
        for coll in self.outbox_collections:
            batch[coll].create_index(SINCE)
        self.outbox_indexed = True
        return batch

    def touched(self, collection, _id, doc=None):
        """Wake the relay for this entity; `doc`, the document as the write left it, saves
        the relay reading it again (None: it reads)."""
        key = (collection, _id)
        if doc is not None and (self._handed < self.handoff_documents
                                or self._touched.get(key) is not None):
            if self._touched.get(key) is None:
                self._handed += 1
            self._touched[key] = dict(doc)
        else:
            if self._touched.pop(key, None) is not None:
                self._handed -= 1
            self._touched[key] = None
        self._wake.set()

    def drain_touched(self):
        """{(collection, _id): the document as written, or None} since the last drain."""
        refs, self._touched, self._handed = self._touched, {}, 0
        return refs

    def ping(self):
        self.db.client.admin.command("ping")


class Store(DependencyProvider):
    prom = PromRegistry()

    def __init__(self, store_cls):
        self.store_cls = store_cls
        self.client = None
        self.store = None
        self._running = False
        self._indexes_ready = False
        self._set_up = Event()  # sent the store once setup made it

    def setup(self):
        config = self.container.config
        self.uri = config.get("MONGO_URI", "mongodb://127.0.0.1:27017")
        self.db_name = config.get("MONGO_DATABASE") or self.container.service_name
        timeout_ms = int(setting(config, "MONGO.timeout_ms", 3000))
        self.client = MongoClient(
            self.uri,
            tz_aware=True,
            appname=self.container.service_name,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            maxPoolSize=int(setting(config, "MONGO.pool_size", 100)),
        )
        self.store = self.store_cls(self.client[self.db_name], config)
        self._set_up.send(self.store)
        self.sweep_interval = float(setting(config, "OUTBOX.sweep_interval_seconds", 10))
        self.publisher = None
        self._relay_thread = None
        self._unsent = set()  # entities whose relay failed: the stop flushes them too
        self.flush_seconds = float(setting(config, "SHUTDOWN.grace_seconds", 10))
        # An instance may leave relaying to others (and tests drive relays by hand).
        relay_enabled = setting(config, "OUTBOX.relay_enabled", True)
        if self.store_cls.outbox_collections and relay_enabled:
            self.publisher = ConfirmingPublisher(
                config["AMQP_URI"],
                confirm_timeout=float(setting(config, "OUTBOX.confirm_timeout_seconds", 10)),
                on_declare=stream_declarer(config),
            )
            self.relay = OutboxRelay(
                self.store.db,
                self.store_cls.outbox_collections,
                self.publisher,
                batch_size=int(setting(config, "OUTBOX.batch_size", 500)),
                grace_seconds=float(setting(config, "OUTBOX.grace_seconds", 2.0)),
                logs=self.store.bucket_logs,
            )
            self.prom.outbox.relaying = True
        # the first try at the indexes runs while the other extensions set up (event
        # handlers declare their queues meanwhile); start waits for it
        self._running = True
        self._created = Event()  # sent once the indexes exist
        self._first_try = self.container.spawn_managed_thread(
            partial(self._prepare, tries=1), identifier="store.indexes")

    @property
    def indexes_ready(self):
        """Whether this start created the indexes (kit.ops: not ready before)."""
        return self._indexes_ready

    def wait_for_store(self):
        """The store, once this provider is set up: for other providers' start-up work
        that runs while the container sets up (extensions set up in no given order)."""
        return self._set_up.wait()

    def wait_for_indexes(self):
        """Return once the indexes exist (work that needs them, such as migrations)."""
        self._created.wait()

    def start(self):
        if self.publisher is not None:
            self._relay_thread = self.container.spawn_managed_thread(
                self._relay_loop, identifier="outbox.relay")
        # one try before the container is started, so that it starts with its indexes; a
        # database that is down does not hold the start up: the tries go on in the
        # background
        if not self._first_try.wait():
            self.container.spawn_managed_thread(self._prepare, identifier="store.indexes")

    def _prepare(self, tries=None):
        delay = 0.2
        while self._running and not self._indexes_ready and tries != 0:
            try:
                self.store.ensure_indexes()
                if not self.store.outbox_indexed:  # a store that declares no index batch
                    for coll in self.store_cls.outbox_collections:
                        self.store.db[coll].create_index(SINCE)
                self._indexes_ready = True
                self._created.send()
            except PyMongoError as exc:
                tries = None if tries is None else tries - 1
                log.warning("creating indexes failed, retrying: %s", exc)
                if tries != 0:
                    eventlet.sleep(delay)
                    delay = min(delay * 2, 5.0)
        return self._indexes_ready

    def _relay_loop(self):
        store = self.store
        backoff = 0.0
        next_sweep = 0.0
        while self._running:
            woke = store._wake.wait(timeout=backoff or self.sweep_interval)
            store._wake.clear()
            if not self._running:
                break
            refs = store.drain_touched()
            try:
                if refs:
                    self.relay.publish_entities(refs)
                now = eventlet.hubs.get_hub().clock()
                if not woke or now >= next_sweep:
                    try:
                        self.relay.sweep()
                    finally:
                        self._note_oldest()
                    next_sweep = now + self.sweep_interval
                self._retry_unsent()
                backoff = 0.0
            except (PublishError, PyMongoError) as exc:
                # The events stay in their outboxes: retried with the next round (and
                # flushed on stop); the sweep would find them too.
                self._unsent |= set(refs)
                log.warning("outbox relay: %s; retrying", exc)
                backoff = min((backoff or 0.25) * 2, self.sweep_interval)

    def _retry_unsent(self):
        """After the sweep (whose note of the oldest event must not wait for the broker):
        the entities whose relay failed, at once rather than when the sweep's grace ends."""
        if self._unsent:
            unsent, self._unsent = self._unsent, set()
            try:
                self.relay.publish_entities(unsent)
            except (PublishError, PyMongoError):
                self._unsent |= unsent
                raise

    def _note_oldest(self):
        """For dealflow_outbox_oldest_seconds: once per sweep, whether it published or not."""
        try:
            self.prom.outbox.oldest = self.relay.oldest_pending()
        except PyMongoError as exc:  # the last value stays, and its age keeps growing
            log.debug("oldest outbox event unknown: %s", exc)

    def _halt(self):
        self._running = False
        if self.store is not None:
            self.store._wake.set()
        if self.publisher is not None:
            self.publisher.close()
        if self.client is not None:
            self.client.close()

    def stop(self):
        """After the workers finished (nameko stops dependencies last): publish what this
        instance's writes left in their outboxes, within SHUTDOWN.grace_seconds. Another
        instance's sweep would find them too, but later, and never when this is the last."""
        self._running = False
        if self.store is not None:
            self.store._wake.set()
        if self.publisher is not None:
            if self._relay_thread is not None:
                try:
                    self._relay_thread.wait()  # its batch in flight, on the same channel
                except Exception:  # noqa: BLE001 - it died already; the flush still runs
                    log.debug("outbox relay ended with an error", exc_info=True)
            self._flush()
        self._halt()

    def _flush(self):
        refs = set(self.store.drain_touched()) | self._unsent
        deadline = time.monotonic() + self.flush_seconds
        delay = 0.1
        while refs:
            try:
                sent = self.relay.publish_entities(refs)
                log.info("outbox flushed on stop: %d events", sent)
                return
            except (PublishError, PyMongoError) as exc:
                if time.monotonic() + delay > deadline:
                    log.warning("outbox not flushed on stop (%s): %d entities wait for a "
                                "sweep", exc, len(refs))
                    return
                eventlet.sleep(delay)
                delay = min(delay * 2, 1.0)

    def kill(self):
        self._halt()

    def get_dependency(self, worker_ctx):
        return self.store
