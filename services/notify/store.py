"""MongoDB queries of the notify service; nothing else touches its collections.

A notification's _id is its key (event id|rule|recipient|channel): inserting the plan of
a redelivered event inserts nothing new. `due_at` is set only while a notification waits
(queued, retrying, delayed), so the delivery timer reads an index range of what is due and
never the delivery log. A claim moves `due_at` one lease ahead and stamps a claim token in
one find_one_and_update, so N instances never send one notification at the same time; the
outcome is written only under that token. Delivery is at least once at one edge: a send
whose outcome cannot be written (the database went away in between) is sent again when
its lease runs out.
"""
import datetime as dt
import uuid

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from kit.mongo import BaseStore
from kit.outbox import with_events
from kit.paging import keyset_filter
from kit.versioned import events as versioned_events

NOTIFICATIONS = "notifications"
OPTOUTS = "optouts"
RATES = "rates"
RULES = "rules"
RULES_ID = "rules"  # one document holds the admin API's rules by name
ACTOR = "system:notify"
HIDDEN = {"outbox": 0, "outbox_since": 0}
LIST_FILTERS = ("event_id", "recipient", "status", "rule", "channel")


class NotifyStore(BaseStore):
    outbox_collections = (NOTIFICATIONS,)

    def ensure_indexes(self):
        with self.index_batch() as db:  # one createIndexes per collection
            self._declare_indexes(db)

    def _declare_indexes(self, db):
        notes = db[NOTIFICATIONS]
        notes.create_index("due_at")
        notes.create_index([("created_at", ASCENDING), ("_id", ASCENDING)])
        for name in LIST_FILTERS:
            notes.create_index([(name, ASCENDING),
                                ("created_at", ASCENDING), ("_id", ASCENDING)],
                               name=f"{name}_created")
        db[RATES].create_index("expires_at")

    # --- planning ------------------------------------------------------------------------

    def insert_planned(self, docs, now, lease_seconds):
        """Insert each planned notification unless its key exists; returns those inserted.
        (One insert per document: a duplicate key fails only its own.) One that is due
        now goes in claimed by the inserting worker, which sends it at once: no second
        write to claim it; should the worker die, the lease runs out and the timer sends."""
        inserted = []
        for doc in docs:
            if doc.get("due_at") is not None and doc["due_at"] <= now:
                doc = {**doc, "due_at": now + dt.timedelta(seconds=lease_seconds),
                       "claim": uuid.uuid4().hex}
            try:
                self.db[NOTIFICATIONS].insert_one({**doc, "version": 0})
            except DuplicateKeyError:
                continue
            inserted.append({**doc, "version": 0})
        return inserted

    def opted_out(self, recipients):
        """{(recipient, channel or "*")} for these recipient keys (one _id look-up each)."""
        found = set()
        for key in set(recipients):
            doc = self.db[OPTOUTS].find_one({"_id": key})
            if doc:
                found.update((key, channel) for channel in doc.get("channels") or ())
        return found

    def opt_out(self, recipient, channel, now):
        self.db[OPTOUTS].update_one(
            {"_id": recipient},
            {"$addToSet": {"channels": channel}, "$set": {"updated_at": now}}, upsert=True)

    # --- delivery ------------------------------------------------------------------------

    def due(self, now, limit):
        return [doc["_id"] for doc in self.db[NOTIFICATIONS].find(
            {"due_at": {"$lte": now}}, {"_id": 1}).sort("due_at", ASCENDING).limit(limit)]

    def claim(self, key, now, lease_seconds):
        """The notification, claimed for one attempt, or None when it is not due (sent,
        claimed by another instance, or waiting)."""
        token = uuid.uuid4().hex
        # (FerretDB v1 has no projection on findAndModify)
        doc = self.db[NOTIFICATIONS].find_one_and_update(
            {"_id": key, "due_at": {"$lte": now}},
            {"$set": {"due_at": now + dt.timedelta(seconds=lease_seconds), "claim": token}},
            return_document=ReturnDocument.AFTER)
        if doc is None:
            return None
        for field in HIDDEN:
            doc.pop(field, None)
        return doc

    def record(self, doc, outcome):
        """Write an attempt's outcome (and its events, into the outbox) under the claim."""
        built = versioned_events(doc["_id"], doc.get("version", 0), outcome.events, actor=ACTOR)
        update = {"$set": dict(outcome.set), "$push": {"log": outcome.log}}
        if outcome.unset:
            update["$unset"] = {field: "" for field in outcome.unset}
        increments = {"version": len(built)}
        if outcome.attempted:
            increments["attempts"] = 1
        update["$inc"] = increments
        with_events(update, built)
        done = self.db[NOTIFICATIONS].update_one({"_id": doc["_id"], "claim": doc["claim"]},
                                                 update)
        if done.matched_count and built:
            self.touched(NOTIFICATIONS, doc["_id"])
        return bool(done.matched_count)

    def take_slot(self, recipient, channel, window, count):
        """One of `count` sends of this recipient and channel in this rate window: True
        if taken. One counter document per window, raised only below the count: the
        upsert of a full window's counter hits its _id and fails, so N instances never
        hand out more than `count` slots."""
        start, end = window
        key = f"{recipient}|{channel}|{int(start.timestamp())}"
        try:
            self.db[RATES].update_one({"_id": key, "n": {"$lt": count}},
                                      {"$inc": {"n": 1}, "$set": {"expires_at": end}},
                                      upsert=True)
        except DuplicateKeyError:
            return False
        return True

    def drop_old_windows(self, now):
        self.db[RATES].delete_many({"expires_at": {"$lte": now}})

    # --- rules of the admin API ----------------------------------------------------------

    def stored_rules(self):
        doc = self.db[RULES].find_one({"_id": RULES_ID})
        return (doc or {}).get("items") or {}

    def put_rule(self, name, raw, actor, now):
        """One rule set or replaced by name, in one atomic update (rule names are
        checked to be plain keys)."""
        self.db[RULES].update_one(
            {"_id": RULES_ID},
            {"$set": {f"items.{name}": {**raw, "by": actor, "at": now}}}, upsert=True)

    def delete_rule(self, name):
        done = self.db[RULES].update_one({"_id": RULES_ID, f"items.{name}": {"$exists": True}},
                                         {"$unset": {f"items.{name}": ""}})
        return bool(done.modified_count)

    # --- reading -------------------------------------------------------------------------

    def get(self, key):
        return self.db[NOTIFICATIONS].find_one({"_id": key}, HIDDEN)

    def find(self, filters, limit, after=None):
        """A page in (created_at, _id) order; each filter field has an index with the
        order's keys, and the store reads through one of them (further filters narrow)."""
        query = {k: v for k, v in filters.items() if v is not None}
        if after:
            query = {"$and": [query, keyset_filter(after)]} if query else keyset_filter(after)
        return list(self.db[NOTIFICATIONS].find(query, HIDDEN)
                    .sort([("created_at", ASCENDING), ("_id", ASCENDING)]).limit(limit))

