"""Transactional outbox: pending events live in the entity document they belong to.

A write puts the state change and its events into one single-document update
(`with_events`). The relay publishes them with batched confirms and then removes exactly
what it published. A crash between the two only repeats a publish; consumers are
idempotent, so the repeat changes nothing. An entity with a bucketed log (kit.buckets)
has its new entries copied into their buckets in the same pass, before the clear.

A write may carry the audit trail's entry for the request that made it (`with_audit`,
kit.audit): the relay inserts it into the `audit` collection, before it publishes the
events that write caused, and the clear removes it with them. So there is no event
without its audit entry and no extra round trip on the request's path; a kill -9 leaves
the entry in the document for the next sweep, which inserts it again (its `_id` makes the
second insert a no-op). Until the relay ran (milliseconds; the sweep's grace after a
crash) the entry is in the entity, not yet in `GET /api/v1/audit`.
"""
import datetime as dt
import logging
from collections import OrderedDict

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from kit.events import exchange_for
from kit.fields import to_utc, utcnow

log = logging.getLogger(__name__)

OUTBOX = "outbox"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
SINCE = "outbox_since"
AUDIT = "outbox_audit"
AUDIT_COLLECTION = "audit"
DUPLICATE_KEY = 11000


def with_events(update, events, now=None):
    """Add `events` to a MongoDB update document (in place) and return it."""
    if not events:
        return update
    update.setdefault("$push", {})[OUTBOX] = {"$each": list(events)}
    update.setdefault("$min", {})[SINCE] = now or utcnow()
    return update


def new_document(doc, events, now=None):
    """An inserted document that carries its first events."""
    doc[OUTBOX] = list(events)
    if events:
        doc[SINCE] = now or utcnow()
    return doc


def with_audit(doc_or_update, entry, *, insert=False):
    """Carry an audit entry (kit.audit) in an inserted document or an update (in place).
    Only a write that carries events may carry one: the relay finds the entry through
    them, and the clear's filter on the outbox keeps an entry that came meanwhile."""
    if entry is None:
        return doc_or_update
    if insert:
        doc_or_update.setdefault(AUDIT, []).append(entry)
    else:
        doc_or_update.setdefault("$push", {})[AUDIT] = entry
    return doc_or_update


def _merged(update, extra):
    """`update` with the operators of `extra` added (field by field, per operator)."""
    out = {op: dict(fields) for op, fields in update.items()}
    for op, fields in extra.items():
        out.setdefault(op, {}).update(fields)
    return out


def _exact(ops):
    """`ops` for a clear whose filter matched the outbox exactly: no write came since the
    relay read the document, so the audit entries go altogether (no empty list left)."""
    pulled = ops.get("$pullAll") or {}
    if AUDIT not in pulled:
        return ops
    out = {op: fields for op, fields in ops.items() if op != "$pullAll"}
    rest = {k: v for k, v in pulled.items() if k != AUDIT}
    if rest:
        out["$pullAll"] = rest
    out.setdefault("$unset", {})[AUDIT] = ""
    return out


def _fresh(doc, since):
    """Whether a document as its write left it is younger than any sweep could take."""
    waiting = doc.get(SINCE)
    return waiting is None or to_utc(waiting) > since


def event_exchange(event):
    return exchange_for(event["source"].rsplit("/", 1)[-1])


class OutboxRelay:
    """Moves events from entity outboxes to RabbitMQ. No nameko here: the store provider
    drives it from a green thread, and tests drive it directly."""

    def __init__(self, db, collections, publisher, *, batch_size=500, grace_seconds=2.0,
                 logs=None):
        self.db = db
        self.collections = list(collections)
        self.publisher = publisher
        self.batch_size = batch_size
        self.grace = dt.timedelta(seconds=grace_seconds)
        self.logs = dict(logs or {})  # collection -> kit.buckets.BucketLog
        # ids of events this relay published and cleared lately (see _publish_docs)
        self._done = OrderedDict()
        self._done_limit = max(batch_size * 20, 10000)

    def _fields(self, coll):
        log = self.logs.get(coll)
        return {OUTBOX: 1, SINCE: 1, AUDIT: 1, **(log.projection() if log else {})}

    def publish_entities(self, refs):
        """Publish the outboxes of these (collection, _id) documents; returns events sent.
        `refs` may map each to the document as its write left it (kit.mongo's `touched`):
        those are not read again, the clear's filter still names what was published."""
        known = refs if isinstance(refs, dict) else {}
        # A sweep (this instance's or another's) takes the outboxes that waited past the
        # grace, so a copy that old may hold events that are out and cleared already: it
        # is read again. Trusting it republished a bulk import's whole backlog, since the
        # relay of the earlier events fell behind its writes (`make seed`: every event of
        # 100,000 leads went out twice, and each clear missed and wrote three times).
        trusted_since = utcnow() - self.grace
        by_coll, docs_of = {}, {}
        for (coll, _id) in refs:
            doc = known.get((coll, _id))
            if doc is not None and _fresh(doc, trusted_since):
                docs_of.setdefault(coll, []).append(doc)
            else:
                by_coll.setdefault(coll, []).append(_id)
        sent = 0
        for coll, docs in docs_of.items():
            for start in range(0, len(docs), self.batch_size):
                sent += self._publish_docs(coll, docs[start:start + self.batch_size])
        for coll, ids in by_coll.items():
            for start in range(0, len(ids), self.batch_size):
                # one indexed read per batch (`$in` on `_id`: pushdown.patch locally)
                docs = list(self.db[coll].find(
                    {"_id": {"$in": ids[start:start + self.batch_size]}}, self._fields(coll)))
                sent += self._publish_docs(coll, docs)
        return sent

    def sweep(self, older_than=None):
        """Publish leftovers: outboxes that waited longer than the grace period (an
        instance crashed, or the broker was down). Returns events sent."""
        cutoff = utcnow() - (self.grace if older_than is None else older_than)
        sent = 0
        for coll in self.collections:
            while True:
                docs = list(self.db[coll].find(
                    {SINCE: {"$lte": cutoff}}, self._fields(coll)).limit(self.batch_size))
                if not docs:
                    break
                sent += self._publish_docs(coll, docs)
                if len(docs) < self.batch_size:
                    break
        return sent

    def oldest_pending(self):
        """When the oldest event still in an outbox was written (None when all are out):
        one indexed, sorted look-up per collection."""
        oldest = None
        for coll in self.collections:
            # a range (not $type) so that FerretDB answers it from the index too
            for doc in self.db[coll].find({SINCE: {"$gte": EPOCH}}, {SINCE: 1}) \
                    .sort([(SINCE, 1), ("_id", 1)]).limit(1):
                if oldest is None or doc[SINCE] < oldest:
                    oldest = doc[SINCE]
        return oldest

    def _publish_docs(self, coll, docs):
        log = self.logs.get(coll)
        # events this relay published and cleared already: a write's answer may still
        # show them when that write raced the clear
        docs = [{**d, OUTBOX: [ev for ev in d.get(OUTBOX) or () if ev["id"] not in self._done]}
                for d in docs]
        self._unmark([d for d in docs if d.get(SINCE) is not None and not d[OUTBOX]
                       and not d.get(AUDIT) and not (log and log.due(d))], coll, log)
        docs = [d for d in docs if d[OUTBOX] or (log and log.due(d))]
        if not docs:
            return 0
        messages = [(event_exchange(ev), ev["type"], ev, {"ce-id": ev["id"]})
                    for doc in docs for ev in doc[OUTBOX]]
        self._insert_audit([entry for doc in docs for entry in doc.get(AUDIT) or ()])
        if messages:
            self.publisher.publish_batch(messages)
        extra = {}
        if log:  # the log's due entries go into their buckets before the clear says so
            for collection, copies in log.copy_writes(docs):
                self.db[collection].bulk_write(copies, ordered=False)
            extra = {doc["_id"]: (log.flushed_update(doc), log.clear_guard(doc)) for doc in docs}
        for doc in docs:  # exactly the entries inserted: one a newer write pushed stays
            if doc.get(AUDIT):
                ops, unchanged = extra.get(doc["_id"], ({}, {}))
                extra[doc["_id"]] = (_merged(ops, {"$pullAll": {AUDIT: doc[AUDIT]}}),
                                     unchanged)
        self.remove_many(coll, [(doc["_id"], doc[OUTBOX]) for doc in docs], extra)
        for message in messages:
            self._done[message[2]["id"]] = None
        while len(self._done) > self._done_limit:
            self._done.popitem(last=False)
        return len(messages)

    def _unmark(self, docs, coll, log):
        """Documents marked as waiting (`outbox_since`) with nothing to publish or copy
        any more: a clear that lost a race to a write that added a log entry but was not
        due keeps the mark, and the sweep would read the document every interval forever.
        The mark goes if the outbox is still empty and no entry came meanwhile."""
        if docs:
            self.db[coll].bulk_write([
                UpdateOne({"_id": d["_id"], OUTBOX: [], **(log.unchanged(d) if log else {})},
                          {"$unset": {SINCE: ""}}) for d in docs], ordered=False)

    def _insert_audit(self, entries):
        """The audit entries the documents carry, in one round trip; an entry inserted by
        an earlier pass (a crash before its clear) is a duplicate key, and stays one."""
        if not entries:
            return
        try:
            self.db[AUDIT_COLLECTION].insert_many(entries, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise

    def remove_many(self, coll, published, extra=None):
        """Empty the outboxes that hold exactly what was published, in one round trip; an
        outbox that got a newer event meanwhile keeps it (`remove_published`). `extra`:
        {_id: (update operators to apply with the clear (a log's `$max` flushed), the
        filter saying no log entry came meanwhile)}."""
        extra = extra or {}
        done = self.db[coll].bulk_write([
            UpdateOne({"_id": _id, OUTBOX: events, **extra.get(_id, ({}, {}))[1]},
                      _merged({"$set": {OUTBOX: []}, "$unset": {SINCE: ""}},
                              _exact(extra.get(_id, ({}, {}))[0])))
            for _id, events in published], ordered=False)
        if done.matched_count < len(published):
            for _id, events in published:  # rare: find and trim the ones that grew
                self.remove_published(coll, _id, events, extra.get(_id))

    def remove_published(self, coll, _id, published, extra=None):
        collection = self.db[coll]
        extra, unchanged = extra or ({}, {})
        # Usual case: nothing was added meanwhile, so the outbox empties in one write.
        done = collection.update_one(
            {"_id": _id, OUTBOX: published, **unchanged},
            _merged({"$set": {OUTBOX: []}, "$unset": {SINCE: ""}}, _exact(extra)),
        )
        if done.matched_count == 0:
            # A newer event arrived: remove exactly what was sent and keep the rest.
            # ($pull with a condition is a silent no-op on FerretDB v1; $pullAll works.)
            collection.update_one({"_id": _id},
                                  _merged({"$pullAll": {OUTBOX: published}}, extra))
            # and if that emptied it (and no log entry came meanwhile), the sweep has
            # nothing left to look at here
            collection.update_one({"_id": _id, OUTBOX: [], **unchanged},
                                  {"$unset": {SINCE: ""}})
