"""Data migrations: stored documents that new rules reject (or lack what they need) are
brought up to date once, in the background, by every service the same way.

A migration names a collection, the fields it reads, and a pure `fix(doc)` that returns
the fields to set (or None when the document is fine). It runs once per database: a
marker document in `migrations` (`_id` = the migration's name) records its state.
- Batches walk the collection in `_id` order, from after the last `_id` done (sorted,
  limited): a flat cost per batch at any size on MongoDB. The local FerretDB build pushes
  down `_id` equality but not `_id` ranges, only ranges of (field, `_id`) keys, so a
  migration may name an indexed field to `walk` by: batches are then keyset ranges of
  (field, `_id`). Documents without that field sort first; past them, the walk goes on
  from `floor`, a value below every real one of the field (a range, as the index walks).
- After each batch the marker records where it stopped, so a killed run resumes from
  there, not from the start.
- An instance claims the run with a lease it renews per batch (an atomic
  find-and-modify on the marker), so N instances do not walk the collection N times; a
  lease that lapsed (its instance died) is taken over.
- Each document is written only if the fields `fix` read are still as read (a
  concurrent edit wins, and it derives the same fields itself), and the write is the
  same however often it is repeated: a batch redone after a kill changes nothing twice.
  Writes elsewhere that the document's own depends on (`copies`) go first and are
  idempotent too, so a kill between the two only repeats them.
- Once done, the marker says so and a start costs one read by `_id`.
"""
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from typing import NamedTuple

import eventlet
from nameko.extensions import DependencyProvider
from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError, PyMongoError

from kit.config import setting
from kit.fields import utcnow
from kit.mongo import Store
from kit.paging import keyset_filter

log = logging.getLogger(__name__)

MARKERS = "migrations"
DONE, RUNNING = "done", "running"


class Migration(NamedTuple):
    name: str
    collection: str
    reads: tuple  # the fields `fix` reads (the guard of each write)
    fix: Callable  # doc -> {field: value} to set, or None
    walk: str | None = None  # an indexed field walked with `_id` (None: `_id` alone)
    floor: object = None  # with `walk`: a value below every real value of that field
    # fields `fix` also reads whose value the guard of `reads` implies (a long array
    # need not be repeated in the write's filter)
    needs: tuple = ()
    # doc -> [(collection, [pymongo write ops])]: idempotent writes elsewhere that must be
    # done before the document's own (its entries copied into buckets, kit.buckets)
    copies: Callable | None = None

    def batch(self, last):
        """(filter, sort) of the documents after `last` (the marker's position)."""
        if self.walk is None:
            return ({} if last is None else {"_id": {"$gt": last}}), [("_id", ASCENDING)]
        order = [(self.walk, ASCENDING), ("_id", ASCENDING)]
        if last is None:
            return {}, order
        if last[0] is None:  # among the documents without the field: they sort first
            return {"$or": [{self.walk: {"$gte": self.floor}},
                            {self.walk: None, "_id": {"$gt": last[1]}}]}, order
        return keyset_filter(tuple(last), self.walk), order

    def position(self, doc):
        return doc["_id"] if self.walk is None else [doc.get(self.walk), doc["_id"]]


class Runner:
    """Runs migrations against one database; `now` is injectable for tests."""

    def __init__(self, db, batch_size=500, lease_seconds=60, now=utcnow, owner=None):
        self.db = db
        self.batch_size = batch_size
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.now = now
        self.owner = owner or str(uuid.uuid4())

    def done(self, migration):
        marker = self.db[MARKERS].find_one({"_id": migration.name})
        return marker is not None and marker.get("status") == DONE

    def claim(self, migration):
        """The marker once this runner holds the run's lease; None when it is done or
        another runner holds a lease that has not lapsed."""
        markers, now = self.db[MARKERS], self.now()
        try:
            markers.insert_one({"_id": migration.name, "status": RUNNING, "last_id": None,
                                "fixed": 0, "owner": self.owner,
                                "lease_until": now + self.lease, "started_at": now})
        except DuplicateKeyError:
            pass
        marker = markers.find_one({"_id": migration.name})
        if marker is None or marker.get("status") == DONE:
            return None
        if marker.get("owner") != self.owner and marker["lease_until"] > now:
            return None
        return markers.find_one_and_update(
            {"_id": migration.name, "status": RUNNING, "owner": marker["owner"],
             "lease_until": marker["lease_until"]},
            {"$set": {"owner": self.owner, "lease_until": now + self.lease}},
            return_document=ReturnDocument.AFTER)

    def step(self, migration, marker):
        """One batch after the marker's last `_id`: fix it, record the progress (renewing
        the lease). Returns the marker after it, None when the lease was lost."""
        query, order = migration.batch(marker["last_id"])
        projection = dict.fromkeys((*migration.reads, *migration.needs,
                                    *filter(None, [migration.walk])), 1)
        batch = list(self.db[migration.collection].find(query, projection)
                     .sort(order).limit(self.batch_size))
        # a batch's writes go in one bulk write per collection (round trips, not documents,
        # make a migration's time): the copies first, then the documents' guarded updates
        copies, writes = {}, []
        for doc in batch:
            fields = migration.fix(doc)
            if fields:
                for collection, ops in (migration.copies(doc) if migration.copies else ()):
                    copies.setdefault(collection, []).extend(ops)
                guard = {"_id": doc["_id"], **{f: doc.get(f) for f in migration.reads}}
                writes.append(UpdateOne(guard, {"$set": fields}))
        for collection, ops in copies.items():
            if ops:
                self.db[collection].bulk_write(ops, ordered=False)
        fixed = self.db[migration.collection].bulk_write(
            writes, ordered=False).modified_count if writes else 0
        update = {"$set": {"lease_until": self.now() + self.lease}, "$inc": {"fixed": fixed}}
        if batch:
            update["$set"]["last_id"] = migration.position(batch[-1])
        else:
            update["$set"].update(status=DONE, finished_at=self.now())
        return self.db[MARKERS].find_one_and_update(
            {"_id": migration.name, "owner": self.owner, "status": RUNNING}, update,
            return_document=ReturnDocument.AFTER)

    def run(self, migration, max_batches=None):
        """Run (or resume) the migration to its end; False when another runner holds it
        or this one lost its lease (it is then theirs to finish)."""
        marker = self.claim(migration)
        batches = 0
        while marker is not None and marker["status"] == RUNNING:
            if max_batches is not None and batches >= max_batches:
                return False
            marker = self.step(migration, marker)
            batches += 1
            eventlet.sleep(0)  # requests go on while a large collection is walked
        if marker is not None:
            log.info("migration done", extra={"migration": migration.name,
                                              "fixed": marker.get("fixed", 0)})
        return marker is not None


class Migrations(DependencyProvider):
    """Runs a service's migrations in a managed thread after start (MIGRATIONS config:
    batch_size, lease_seconds, retry_seconds): until each is done, retried while another
    instance holds it or the database is unreachable."""

    def __init__(self, migrations):
        # the migrations, or config -> the migrations (one that depends on configuration)
        self._given = migrations
        self.migrations = () if callable(migrations) else tuple(migrations)
        self._running = False
        self.finished = False  # every migration done (tests poll it)

    def setup(self):
        config = self.container.config
        if callable(self._given):
            self.migrations = tuple(self._given(config))
        self.batch_size = int(setting(config, "MIGRATIONS.batch_size", 500))
        self.lease_seconds = float(setting(config, "MIGRATIONS.lease_seconds", 60))
        self.retry_seconds = float(setting(config, "MIGRATIONS.retry_seconds", 5))

    def start(self):
        self._running = True
        self.container.spawn_managed_thread(self._run, identifier="migrations")

    def stop(self):
        self._running = False

    def kill(self):
        self._running = False

    def _run(self):
        store = next(d for d in self.container.dependencies if isinstance(d, Store))
        # after the indexes: a migration walks by them, and its writes would otherwise
        # take turns with index creation in the database's write turn (FerretDB), which
        # /readyz waits for
        store.wait_for_indexes()
        runner = Runner(store.store.db, self.batch_size, self.lease_seconds)
        pending = list(self.migrations)
        while self._running and pending:
            try:
                while pending and (runner.done(pending[0]) or runner.run(pending[0])):
                    pending.pop(0)
            except PyMongoError as exc:
                log.warning("migration failed, retrying: %s", exc)
            if pending:
                deadline = time.monotonic() + self.retry_seconds
                while self._running and time.monotonic() < deadline:
                    eventlet.sleep(min(0.2, self.retry_seconds))
        self.finished = not pending
