"""MongoDB queries of the webhooks service; nothing else touches its collections.

A delivery's _id is its webhook-id (subscription, event): the intake inserts it once however
often the stream hands the event over. `queue` (its subscription) and `due_at` are set only
while it waits, so the sender reads one subscription's waiting deliveries through an index
and never the delivery log. A claim moves `due_at` one lease ahead and stamps a token in
one find_one_and_update, so N instances never send one delivery at the same time; the
attempt's outcome is written only under that token. Delivery is at least once at one edge:
an attempt whose outcome cannot be written is sent again when its lease runs out (the
receiver drops it by webhook-id).
"""
import datetime as dt
import uuid

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from kit.mongo import BaseStore
from kit.outbox import EPOCH, with_events
from kit.paging import keyset_filter
from kit.versioned import events as versioned_events
from kit.versioned import stale
from webhooks.deliveries import PENDING

SUBSCRIPTIONS = "subscriptions"
DELIVERIES = "deliveries"
OFFSETS = "offsets"
ACTOR = "system:webhooks"
HIDDEN = {"outbox": 0, "outbox_since": 0}
DUPLICATE_KEY = 11000


class WebhooksStore(BaseStore):
    outbox_collections = (SUBSCRIPTIONS,)

    def ensure_indexes(self):
        with self.index_batch() as db:  # one createIndexes per collection
            self._declare_indexes(db)

    def _declare_indexes(self, db):
        subs = db[SUBSCRIPTIONS]
        subs.create_index("enabled")
        subs.create_index([("created_at", ASCENDING), ("_id", ASCENDING)])
        deliveries = db[DELIVERIES]
        deliveries.create_index("queue")
        deliveries.create_index([("subscription_id", ASCENDING), ("created_at", DESCENDING),
                                 ("_id", DESCENDING)], name="subscription_log")

    # --- subscriptions -------------------------------------------------------------------

    def insert_subscription(self, doc):
        self.db[SUBSCRIPTIONS].insert_one({**doc, "version": 0, "revision": 0})
        return doc

    def get_subscription(self, sub_id):
        return self.db[SUBSCRIPTIONS].find_one({"_id": sub_id}, HIDDEN)

    def enabled_subscriptions(self):
        return list(self.db[SUBSCRIPTIONS].find({"enabled": True}, HIDDEN))

    def list_subscriptions(self, limit, after=None):
        query = keyset_filter(after) if after else {"created_at": {"$gte": EPOCH}}
        return list(self.db[SUBSCRIPTIONS].find(query, {**HIDDEN, "secrets": 0})
                    .sort([("created_at", ASCENDING), ("_id", ASCENDING)]).limit(limit))

    def update_subscription(self, sub_id, sets, unset=(), expected=None):
        """The subscription after the change, or None when there is none; with `expected`
        (the caller's If-Match) only at that revision, else Stale. Every change an admin
        can see moves the revision (the ETag): edits, rotations, turning on and off."""
        update = {"$set": sets, "$inc": {"revision": 1}}
        if unset:
            update["$unset"] = {field: "" for field in unset}
        query = {"_id": sub_id}
        if expected is not None:
            query["revision"] = expected if expected else {"$in": [0, None]}
        # (no projection: FerretDB v1's findAndModify takes none)
        after = self.db[SUBSCRIPTIONS].find_one_and_update(
            query, update, return_document=ReturnDocument.AFTER)
        if after is None and expected is not None:
            current = self.get_subscription(sub_id)
            if current is not None:
                raise stale(revision(current), expected, "subscription")
        return after

    def delete_subscription(self, sub_id):
        """The subscription and its deliveries (the log goes with it)."""
        done = self.db[SUBSCRIPTIONS].delete_one({"_id": sub_id})
        self.db[DELIVERIES].delete_many({"subscription_id": sub_id})
        return bool(done.deleted_count)

    def disable(self, sub, fields, event):
        """Turn `sub` off with its event, once: only while it is still on and unchanged
        (two instances that both see the failure run emit one event)."""
        version = sub.get("version", 0)
        built = versioned_events(sub["_id"], version, [event], actor=ACTOR)
        update = with_events({"$set": dict(fields),
                              "$inc": {"version": len(built), "revision": 1}}, built)
        done = self.db[SUBSCRIPTIONS].update_one(
            {"_id": sub["_id"], "enabled": True, "version": version}, update)
        if done.matched_count:
            self.touched(SUBSCRIPTIONS, sub["_id"])
        return bool(done.matched_count)

    def failed_attempt(self, sub_id, now):
        """Count a failed attempt of the subscription; returns it after."""
        return self.db[SUBSCRIPTIONS].find_one_and_update(
            {"_id": sub_id}, {"$inc": {"failures_in_a_row": 1},
                              "$min": {"failing_since": now}},
            return_document=ReturnDocument.AFTER)

    def succeeded(self, sub_id):
        """The failure run ends (one write only when there was one)."""
        self.db[SUBSCRIPTIONS].update_one(
            {"_id": sub_id, "failures_in_a_row": {"$gt": 0}},
            {"$set": {"failures_in_a_row": 0}, "$unset": {"failing_since": ""}})

    def resume(self, sub_id, now):
        """Waiting deliveries of a subscription turned on again go now, each with a
        fresh retry window."""
        self.db[DELIVERIES].update_many(
            {"queue": sub_id}, {"$set": {"due_at": now}, "$unset": {"first_attempt_at": ""}})

    # --- intake --------------------------------------------------------------------------

    def insert_deliveries(self, docs):
        """Insert each delivery unless it exists (a stream may hand an event over twice);
        returns how many are new."""
        if not docs:
            return 0
        try:
            return len(self.db[DELIVERIES].insert_many(docs, ordered=False).inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors") or []
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            return exc.details.get("nInserted", 0)

    def queue_again(self, doc, now):
        """Redelivery: insert the delivery, or queue one that was delivered or failed
        again with a fresh retry window (a waiting one is left as it is). True if queued."""
        try:
            self.db[DELIVERIES].insert_one(doc)
            return True
        except DuplicateKeyError:
            pass
        done = self.db[DELIVERIES].update_one(
            {"_id": doc["_id"], "status": {"$ne": PENDING}},
            {"$set": {"status": PENDING, "queue": doc["subscription_id"], "due_at": now},
             "$unset": {"first_attempt_at": "", "delivered_at": ""}})
        return bool(done.matched_count)

    def take_stream(self, stream, reader, now, lease_seconds):
        """(offset of the last event recorded or None, when the stream was first looked
        at) when `reader` holds the stream now (its lease taken or renewed), else None:
        one instance reads a stream, another takes over once its lease has run out."""
        self.db[OFFSETS].update_one({"_id": stream}, {"$setOnInsert": {"since": now}},
                                    upsert=True)
        doc = self.db[OFFSETS].find_one_and_update(
            {"_id": stream, **_free_for(reader, now)},
            {"$set": {"reader": reader,
                      "lease_until": now + dt.timedelta(seconds=lease_seconds)}},
            return_document=ReturnDocument.AFTER)
        return None if doc is None else (doc.get("offset"), doc["since"])

    def save_offset(self, stream, reader, offset, now, lease_seconds):
        """After the deliveries of everything up to `offset` are written (and `offset`
        None: only the lease renewed). False when `reader` lost the stream meanwhile: its
        offset is not written, the new reader reads on from the one stored."""
        update = {"$set": {"lease_until": now + dt.timedelta(seconds=lease_seconds)}}
        if offset is not None:
            update["$max"] = {"offset": offset}
        done = self.db[OFFSETS].update_one({"_id": stream, "reader": reader}, update)
        return bool(done.matched_count)

    def park_stream(self, stream, reader, now):
        """With no subscription on, the stream's offset goes (unless another reader still
        holds it): the next read starts by the subscriptions' time. True once the stream
        has no offset."""
        doc = self.db[OFFSETS].find_one({"_id": stream})
        if doc is None or "offset" not in doc:
            return True
        done = self.db[OFFSETS].update_one({"_id": stream, **_free_for(reader, now)},
                                           {"$unset": {"offset": ""}})
        return bool(done.matched_count)

    def release_stream(self, stream, reader, now):
        """A stopping reader hands the stream over at once."""
        self.db[OFFSETS].update_one({"_id": stream, "reader": reader},
                                    {"$set": {"lease_until": now}})

    # --- sending -------------------------------------------------------------------------

    def waiting(self, sub_id):
        """The subscription's waiting deliveries, as webhooks.ordering reads them."""
        return list(self.db[DELIVERIES].find(
            {"queue": sub_id}, {"subject": 1, "sequence": 1, "due_at": 1}))

    def claim(self, delivery_id, now, lease_seconds):
        """The delivery, claimed for one attempt, or None when it is not due (sent,
        claimed by another instance, or waiting)."""
        # (FerretDB v1 has no projection on findAndModify)
        return self.db[DELIVERIES].find_one_and_update(
            {"_id": delivery_id, "due_at": {"$lte": now}},
            {"$set": {"due_at": now + dt.timedelta(seconds=lease_seconds),
                      "claim": uuid.uuid4().hex}},
            return_document=ReturnDocument.AFTER)

    def record(self, doc, sets, unset, entry, keep):
        """An attempt's outcome, under the claim; False when the claim was lost. The log
        keeps the newest `keep` attempts (set whole: FerretDB v1 ignores `$push`'s
        `$slice`; the claim makes this the delivery's only writer)."""
        log = [*(doc.get("log") or ()), entry][-keep:]
        update = {"$set": {**sets, "log": log}, "$inc": {"attempts": 1}}
        if unset:
            update["$unset"] = {field: "" for field in unset}
        done = self.db[DELIVERIES].update_one({"_id": doc["_id"], "claim": doc["claim"]},
                                              update)
        return bool(done.matched_count)

    # --- the delivery log ----------------------------------------------------------------

    def get_delivery(self, delivery_id):
        return self.db[DELIVERIES].find_one({"_id": delivery_id}, {"body": 0})

    def deliveries(self, sub_id, status, limit, after=None):
        """A page of the log, newest first, in (created_at, _id) order."""
        query = {"subscription_id": sub_id}
        if status:
            query["status"] = status
        if after:
            query = {"$and": [query, keyset_filter(after, descending=True)]}
        return list(self.db[DELIVERIES].find(query, {"body": 0})
                    .sort([("created_at", DESCENDING), ("_id", DESCENDING)]).limit(limit))


def revision(sub):
    """A subscription's ETag: stored before revisions existed counts as 0."""
    return sub.get("revision") or 0


def _free_for(reader, now):
    """A stream `reader` may take: its own, or one whose lease has run out (or never was)."""
    return {"$or": [{"reader": reader}, {"lease_until": {"$lt": now}},
                    {"lease_until": {"$exists": False}}]}
