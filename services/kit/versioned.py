"""Versioned changes: the one way a service changes an entity and emits what it caused.

Read the entity, let the domain decide (a pure function returning a change or None), then
write the new state and the change's events in one conditional single-document update
(the events go into the entity's outbox, see kit.outbox). Two counters live on the entity:
- `version` counts its events: event n carries `sequence` n, so a subscriber sees 1..n
  with no gap, and the version is the ETag of the state after event n;
- `revision` counts its writes: a change that causes no event (a note, a merge) still
  moves it, and the write's filter names the revision read, so of two racing writers one
  wins and the other reads again and decides again (a bounded number of times, then
  `Contention`).
A caller holding an ETag passes it as `expected`: a state at another version is `Stale`.
"""
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure

from kit.errors import Conflict, Contention, NotFound
from kit.events import new_event
from kit.idempotency import APPLIED, once
from kit.outbox import AUDIT, OUTBOX, SINCE, new_document, with_audit, with_events

VERSION = "version"
REVISION = "revision"
HIDDEN = (OUTBOX, SINCE, AUDIT, APPLIED)


def events(subject, version, pairs, *, actor=None, correlationid=None):
    """CloudEvents for (type, data) pairs of an entity at `version`: sequences version+1..."""
    return [new_event(etype, subject, data, version + n, actor=actor,
                      correlationid=correlationid)
            for n, (etype, data) in enumerate(pairs, start=1)]


def new_entity(doc, pairs, *, actor=None, correlationid=None):
    """The document to insert for a new entity, carrying its first events (1..n)."""
    built = events(doc["_id"], 0, pairs, actor=actor, correlationid=correlationid)
    doc[VERSION] = len(built)
    return new_document(doc, built)


def stale(current, expected, what):
    return Stale(f"The {what} changed meanwhile (version {current}, If-Match {expected}); "
                 "read it again and retry.", current_version=current)


def refused_by_unique_index(exc):
    """MongoDB refuses a write that breaks a unique index with 11000 (DuplicateKeyError);
    FerretDB v1 does so for inserts, but an update or findAndModify comes back as
    InternalError (1) naming SQLite's UNIQUE constraint."""
    return exc.code == 1 and "UNIQUE constraint failed" in str(exc)


class Stale(Conflict):
    """The caller changed a state it read at another version (a stale If-Match)."""


class Versioned:
    """Versioned changes of the entities of one collection.

    What is written is a kit.changes.Change: `as_write(change)` makes one of the domain's
    change where that is something else; `load(doc)` turns a stored document into what the
    domain reads. `touched(collection, _id)` wakes the outbox relay. A change's `log`
    entries go to the entity's bucketed log (`log`, a kit.buckets.BucketLog).
    """

    def __init__(self, collection, *, what, touched, as_write=None, load=None, attempts=8,
                 unique_conflict=None, log=None):
        self.collection = collection
        self.what = what
        self.as_write = as_write or (lambda change: change)
        self.touched = touched
        self.load = load or (lambda doc: doc)
        self.log = log
        self.attempts = attempts
        self.unique_conflict = unique_conflict or (
            f"Another {what} already has one of these unique values.")

    def read(self, _id):
        doc = self.collection.find_one({"_id": _id}, {OUTBOX: 0, SINCE: 0})
        if doc is None:
            raise NotFound(f"No {self.what} {_id}.")
        return doc

    def change(self, _id, decide, *, current=None, expected=None, actor=None,
               correlationid=None, event_id=None, audit=None):
        """Read, decide, write; returns (entity after, change), or (entity, None) when the
        domain found nothing to do or `event_id` was applied already.

        `current` saves the first read when the caller has just read the entity;
        `event_id` makes the change the idempotent effect of a consumed event (the id is
        recorded in the same write); `audit`, the request's audit entry (kit.audit
        `carried`), rides in the write when the change causes events (see `carries`)."""
        for attempt in range(self.attempts):
            doc = current if attempt == 0 and current is not None else self.read(_id)
            if expected is not None and doc[VERSION] != expected:
                raise stale(doc[VERSION], expected, self.what)
            if event_id is not None and event_id in (doc.get(APPLIED) or ()):
                return self._loaded(doc), None
            entity = self._loaded(doc)
            change = decide(entity)
            if change is None:
                return entity, None
            after = self._write(doc, self.as_write(change), actor, correlationid, event_id,
                                audit)
            if after is not None:
                return after, change
        raise Contention(f"The {self.what} is changing concurrently; retry.")

    def _loaded(self, doc):
        return self.load({k: v for k, v in doc.items() if k not in HIDDEN})

    def _write(self, doc, write, actor, correlationid, event_id, audit=None):
        version = doc.get(VERSION, 0)
        built = events(doc["_id"], version, write.events, actor=actor or write.actor,
                       correlationid=correlationid)
        update = {"$inc": {REVISION: 1, VERSION: len(built)}}
        if write.set:
            update["$set"] = dict(write.set)
        if write.push:
            update["$push"] = dict(write.push)
        entries = getattr(write, "log", None)
        if entries:
            self.log.append(update, doc, entries)
        # documents written before revisions existed are claimed by their absence
        filter_ = {"_id": doc["_id"], VERSION: version,
                   REVISION: doc[REVISION] if REVISION in doc else {"$exists": False}}
        if event_id is not None:
            filter_, update = once(filter_, update, event_id)
        with_events(update, built)
        if built:  # the relay finds an entry through its write's events (kit.outbox)
            with_audit(update, audit)
        try:
            # (FerretDB v1 has no projection on findAndModify: hidden fields go in _loaded)
            after = self.collection.find_one_and_update(
                filter_, update, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            raise Conflict(self.unique_conflict) from None
        except OperationFailure as exc:
            if not refused_by_unique_index(exc):
                raise
            raise Conflict(self.unique_conflict) from None
        if after is None:
            return None
        if built or entries:
            self.touched(self.collection.name, doc["_id"], after)
        return self._loaded(after)


def carries(change):
    """Whether the write of this change (returned by `Versioned.change`) carried the audit
    entry it was given: when it caused events."""
    return change is not None and bool(change.events)
