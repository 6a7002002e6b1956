"""An entity's append-only log (a deal's history) in bounded buckets, never one growing array.

The entity document keeps its recent entries: those not yet in a bucket and the last
`recent` that are, so the entity and a write of it stay the same size however long its
past. Two counters go with them: `<field>_count`, how many entries it has, and
`<field>_flushed`, up to which number they are in buckets. An entry gets its number
(`seq`) in the entity's own conditional write (kit.versioned), appended with `$push`, so
only a write that won ever carries one: a losing concurrent writer's entry lands nowhere.
Once `recent` entries wait, the outbox relay copies them into their buckets (a `$set`
keyed by the number, so a repeat changes nothing) before it clears the outbox, and the
clear moves `flushed` with `$max` and drops the entries no longer recent (`$pullAll`).
A crash between the two only repeats the copy. Readers merge the entity's entries with
the buckets.

A bucket is `{_id: "<entity id>:<bucket no., 8 digits>", entity, no, entries: {seq: entry}}`
with at most `size` entries; its `_id` follows from an entry's number, so a page of the
log newest first reads one or two buckets by `_id` (cursor: the number of the last entry
shown).

A log may find an entry by a key (an account's conversion by its lead, so a retried
conversion notes itself once) without reading its past: `keys` names a collection of
`{_id: "<entity id>:<key>", entity, seq}`, one per keyed entry, that the relay upserts
with the entry's bucket, before the clear may drop the entry from the entity. So a keyed
entry is always on the entity or in `keys` (or both), and `holds` reads the entity's few
entries and, when those are not its whole log, one key by `_id`.
"""
from pymongo import UpdateOne

from kit.fields import utcnow
from kit.outbox import SINCE

SEQ = "seq"


class BucketLog:
    def __init__(self, field, collection, *, size=100, recent=10, keys=None, key=None):
        self.field = field
        self.collection = collection
        self.keys = keys  # the collection of keyed entries (None: no keys)
        self.key = key  # entry -> its key, or None
        self.size = size
        self.recent = max(int(recent), 1)
        self.count_field = f"{field}_count"
        self.flushed_field = f"{field}_flushed"

    # --- the entity's side ---------------------------------------------------------------

    def projection(self):
        return {self.field: 1, self.count_field: 1, self.flushed_field: 1}

    def state(self, doc):
        """(entries on the entity, their count, flushed up to) as stored; a document from
        before the buckets (no count) has its entries numbered 1..n, none flushed yet."""
        entries = list(doc.get(self.field) or ())
        if self.count_field not in doc:
            return [{**e, SEQ: n} for n, e in enumerate(entries, start=1)], len(entries), 0
        return entries, doc[self.count_field], doc.get(self.flushed_field, 0)

    def start(self, doc):
        """A new entity document (in place) with its first entries numbered 1..n."""
        entries = list(doc.get(self.field) or ())
        doc[self.field] = [{**e, SEQ: n} for n, e in enumerate(entries, start=1)]
        doc[self.count_field] = len(entries)
        doc[self.flushed_field] = 0
        return doc

    def append(self, update, doc, entries, now=None):
        """Add `entries` to a MongoDB update of `doc` (in place), numbered after the last:
        a `$push` of the new entries only, so the write does not grow with the past. The
        update must be conditional on the state read (kit.versioned's revision)."""
        if not entries:
            return update
        kept, count, flushed = self.state(doc)
        added = [{**e, SEQ: count + n} for n, e in enumerate(entries, start=1)]
        sets = update.setdefault("$set", {})
        # a change may rewrite the entries the entity holds (an erasure blanks their
        # text), one for one: the new ones go after those, in the same `$set`
        rewritten = sets.get(self.field)
        sets[self.count_field] = count + len(added)
        if self.count_field not in doc:  # stored before the buckets: numbered once, whole
            if rewritten is not None:
                kept = [{**e, SEQ: n} for n, e in enumerate(rewritten, start=1)]
            sets[self.field] = kept + added
            sets[self.flushed_field] = 0
        elif rewritten is not None:
            sets[self.field] = list(rewritten) + added
        else:
            update.setdefault("$push", {})[self.field] = {"$each": added}
        if count + len(added) - flushed >= self.recent:
            # the relay's sweep finds entries due for their buckets as it finds events
            update.setdefault("$min", {})[SINCE] = now or utcnow()
        return update

    def unflushed(self, doc):
        """Entries not yet in buckets (a document from before the buckets has none: the
        migration, or its next write, numbers them)."""
        if self.count_field not in doc:
            return []
        flushed = doc.get(self.flushed_field, 0)
        return [e for e in doc.get(self.field) or () if e[SEQ] > flushed]

    def due(self, doc):
        """Entries to copy now: once `recent` of them wait (a copy per `recent` writes)."""
        waiting = self.unflushed(doc)
        return waiting if len(waiting) >= self.recent else []

    def unchanged(self, doc):
        """A filter that holds while no entry was added to `doc` since it was read."""
        if self.count_field not in doc:  # before the buckets: until a write numbers them
            return {self.count_field: {"$exists": False}}
        return {self.count_field: doc[self.count_field]}

    def clear_guard(self, doc):
        """The filter under which the outbox clear of `doc` (as read) may also drop its
        waiting mark. Entries added since the read are fine while they leave the log not
        due: a write that makes it due marks the entity for the sweep itself (`append`),
        and the clear must not take that mark away. A clear that moves entries into
        buckets holds only while nothing was added."""
        if self.count_field not in doc or self.due(doc):
            return self.unchanged(doc)
        _, _, flushed = self.state(doc)
        return {self.count_field: {"$lt": flushed + self.recent}}

    def migration(self, doc):
        """(bucket upserts, entity update) that move a document from before the buckets to
        them: both idempotent; the entity's update is for a filter that requires no count
        yet, so a write that numbered the entries first wins."""
        entries, count, _ = self.state(doc)
        return self._copies(doc["_id"], entries), {"$set": {
            self.field: entries[-self.recent:], self.count_field: count,
            self.flushed_field: count}}

    def migration_writes(self, doc):
        """[(collection, ops)] of `migration`: the buckets and the keys of the entries."""
        entries, _, _ = self.state(doc)
        return [(coll, ops) for coll, ops in (
            (self.collection, self.migration(doc)[0]),
            (self.keys, self._key_ops(doc["_id"], entries))) if ops]

    # --- the relay's side ----------------------------------------------------------------

    def bucket_id(self, entity_id, seq):
        return f"{entity_id}:{(seq - 1) // self.size:08d}"

    def _copies(self, entity_id, entries):
        sets = {}
        for entry in entries:
            bucket = self.bucket_id(entity_id, entry[SEQ])
            sets.setdefault(bucket, {"entity": entity_id, "no": (entry[SEQ] - 1) // self.size})
            sets[bucket][f"entries.{entry[SEQ]}"] = entry
        return [UpdateOne({"_id": bucket}, {"$set": values}, upsert=True)
                for bucket, values in sets.items()]

    def copy_ops(self, docs):
        """One idempotent upsert per bucket for the due entries of `docs`."""
        return [op for doc in docs for op in self._copies(doc["_id"], self.due(doc))]

    def key_id(self, entity_id, key):
        return f"{entity_id}:{key}"

    def _key_ops(self, entity_id, entries):
        if self.keys is None:
            return []
        return [UpdateOne({"_id": self.key_id(entity_id, key)},
                          {"$set": {"entity": entity_id, SEQ: entry[SEQ]}}, upsert=True)
                for entry in entries if (key := self.key(entry)) is not None]

    def copy_writes(self, docs):
        """[(collection, ops)] to do before the clear: `copy_ops`, and the due entries'
        keys (idempotent upserts too)."""
        keys = [op for doc in docs for op in self._key_ops(doc["_id"], self.due(doc))]
        return [(coll, ops) for coll, ops in ((self.collection, self.copy_ops(docs)),
                                              (self.keys, keys)) if ops]

    def flushed_update(self, doc):
        """What the outbox clear also does once the due entries of `doc` are in buckets:
        move `flushed`, and drop the entries that are neither waiting nor recent."""
        due = self.due(doc)
        if not due:
            return {}
        top = max(e[SEQ] for e in due)
        old = [e for e in doc.get(self.field) or () if e[SEQ] <= top - self.recent]
        return {"$max": {self.flushed_field: top},
                **({"$pullAll": {self.field: old}} if old else {})}

    # --- readers -------------------------------------------------------------------------

    def holds(self, db, doc, key):
        """Whether the log of the entity `doc` has an entry with this key: among the entries
        on the entity (a bounded few), else, unless those are its whole log, its key read
        by `_id`. Read `doc` first and write conditionally on it: a key the relay wrote
        after `doc` was read belongs to an entry `doc` shows, or to a later write."""
        if self.key is None:
            return False
        entries, count, _ = self.state(doc)
        if any(self.key(e) == key for e in entries):
            return True
        if len(entries) >= count or self.keys is None:
            return False
        return db[self.keys].find_one({"_id": self.key_id(doc["_id"], key)},
                                      {"_id": 1}) is not None

    def bucket_ids(self, entity_id, count):
        """The `_id` of every bucket an entity with `count` entries may have."""
        return [self.bucket_id(entity_id, n) for n in range(1, count + 1, self.size)]

    def buckets(self, db, doc):
        """The entity's buckets, read by `_id` (none for a document from before them)."""
        entries, count, flushed = self.state(doc)
        if not flushed:
            return []
        return list(db[self.collection].find(
            {"_id": {"$in": self.bucket_ids(doc["_id"], flushed)}}))

    def whole(self, db, doc):
        """Every entry of the entity `doc`, oldest first (its buckets read by `_id`)."""
        entries, count, _ = self.state(doc)
        found = {e[SEQ]: e for e in entries}
        for bucket in self.buckets(db, doc):
            for key, entry in (bucket.get("entries") or {}).items():
                found.setdefault(int(key), entry)
        return [found[n] for n in sorted(found)]

    def page(self, db, doc, before=None, limit=50):
        """Entries of the entity `doc`, newest first, numbered below `before` (the cursor:
        None for the newest). Returns (entries, the cursor of the next page or None)."""
        entries, count, _ = self.state(doc)
        top = count if before is None else min(before - 1, count)
        if top < 1:
            return [], None
        low = max(top - limit + 1, 1)
        found = self._range(db, doc["_id"], entries, low, top)
        rows = [found[n] for n in range(top, low - 1, -1) if n in found]
        return rows, (low if low > 1 else None)

    def page_after(self, db, doc, after=None, limit=50):
        """Entries of the entity `doc`, oldest first, numbered above `after` (the cursor:
        None for the first). Returns (entries, the cursor of the next page or None)."""
        entries, count, _ = self.state(doc)
        low = 1 if after is None else max(after + 1, 1)
        top = min(low + limit - 1, count)
        if low > top:
            return [], None
        found = self._range(db, doc["_id"], entries, low, top)
        rows = [found[n] for n in range(low, top + 1) if n in found]
        return rows, (top if top < count else None)

    def _range(self, db, entity_id, entries, low, top):
        """{seq: entry} numbered low..top: those on the entity, the others from the one or
        two buckets that hold them, read by `_id`."""
        found = {e[SEQ]: e for e in entries if low <= e[SEQ] <= top}
        missing = [n for n in range(low, top + 1) if n not in found]
        if missing:
            ids = sorted({self.bucket_id(entity_id, n) for n in missing})
            for bucket in db[self.collection].find({"_id": {"$in": ids}}):
                for key, entry in (bucket.get("entries") or {}).items():
                    if low <= int(key) <= top:
                        found.setdefault(int(key), entry)
        return found
