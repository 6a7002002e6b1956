"""MongoDB queries of the metrics service; nothing else touches its collections.

One projection document per entity (collections leads, deals, quotes, tickets). Applying an
event is ONE update of that document (a find-and-modify, or a statement of a bulk write that
is read back): it pushes the fact and the event id into `applied` only when the id is not
there yet, bumps `rev` and stamps `updated_at` — so the effect and the proof it was applied
are one atomic write. A duplicate bumps a per-type
duplicate counter on the same document instead (also one write).

`updated_at` is the database's clock as it applies the write (`$currentDate`), not the
instance's: one clock for every instance, and a write that another instance has not read
yet carries a stamp no older than the newest one it read, less the few milliseconds
concurrent writers may commit out of stamp order (MongoDB); FerretDB's front end commits
writes one at a time, in stamp order. So a refresh reads on from the newest stamp it saw.

Snapshots of the KPI state (see snapshot.py) live in `snapshots`: chunk documents
`<snapshot id>.<n>` and one manifest `kpis` naming the newest complete snapshot, its
checksum and watermark, and the one before it (kept so a reader that started on it can
finish); everything is read by `_id`.

Which set of projections is active is recorded in the `control` collection (document
`projections`: the active set's name, and the state of the last rebuild). A rebuild
(rebuild.py) fills a fresh set from the event streams and then switches `active` to it;
every instance follows at its next refresh, and a restart reads the same record, so the
switch outlives the process. A set is a *namespace* of collections in the service's own
database (the service's credentials reach that database only, as deploy/mongo grants
them): the configured database's name stands for its unprefixed collections, and
`<database>_r<id>` for the collections prefixed `r<id>_`. Without the record the
unprefixed set is the active one.
"""
import uuid

from bson import Binary
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from kit.mongo import BaseStore
from metrics.domain import CONTRIBUTIONS, fact_from_event, type_key

PROJECTIONS = tuple(CONTRIBUTIONS)
# Fields the KPIs never read back (the applied ids can be many).
LEAN = {"applied": 0}
# The instance whose live KPIs took in the projection's last write (""; a writer without
# live KPIs: a rebuild, a test, an older version): a refresh skips its own instance's
# writes, which it absorbed as it wrote them.
WRITER = "by"
# The bulk write that made the projection (a token of its own; metrics.store's
# _write_together), so that it can tell the projections it made from another instance's.
MADE = "made"
SNAPSHOTS = "snapshots"
MANIFEST = "kpis"
CONTROL = "control"
ACTIVE = "projections"
RUNNING = "running"
# set on the document apply() returns (never stored): the set of projections it was
# written to, so a write that raced a switch is not taken into the new set's KPIs
SOURCE_DB = "_source_db"
# what a rebuild builds afresh: the collections of a set
SETS = frozenset((*PROJECTIONS, SNAPSHOTS))


class Namespace:
    """One set of projection collections, used by the queries as a pymongo Database: the
    projections and their snapshots are the set's own (prefixed); every other collection
    (the control record, the kit's audit trail) is the database's, whichever set is
    active."""

    def __init__(self, database, name):
        self.database = database
        self.client = database.client
        self.name = name
        self.prefix = "" if name == database.name else name[len(database.name) + 1:] + "_"

    def __getitem__(self, collection):
        return self.database[self.prefix + collection if collection in SETS else collection]

    def __getattr__(self, collection):
        if collection.startswith("_"):
            raise AttributeError(collection)
        return self[collection]

    def drop_collection(self, collection):
        self.database.drop_collection(self.prefix + collection)


class MetricsStore(BaseStore):
    outbox_collections = ()

    def __init__(self, db, config=None):
        self._active = None
        super().__init__(db, config)

    @property
    def db(self):
        """The active projection database (read from the control record once, then
        followed by `follow_active`)."""
        if self._active is None:
            self._active = Namespace(self.base, self.active_name())
        return self._active

    @db.setter
    def db(self, value):
        self.base = value
        self._active = None

    def active_name(self):
        doc = self.base[CONTROL].find_one({"_id": ACTIVE})
        return doc["active"] if doc and doc.get("active") else self.base.name

    def follow_active(self):
        """Point at the active database if a rebuild switched it; True when it changed."""
        name = self.active_name()
        if self._active is not None and self._active.name == name:
            return False
        self._active = Namespace(self.base, name)
        return True

    @classmethod
    def pinned(cls, database, name, config=None):
        """A store on the set `name` whatever the control record says (a rebuild's)."""
        store = cls(database, config)
        store._active = Namespace(database, name)
        return store

    def ensure_indexes(self):
        with self.index_batch() as db:  # one createIndexes per collection
            for name in PROJECTIONS:
                db[name].create_index([("updated_at", ASCENDING)])
            db.leads.create_index([("created_at", ASCENDING)])
            db.deals.create_index([("lead_id", ASCENDING)])

    def apply(self, event, writer=""):
        """Apply one event to its entity's projection (`writer`: as in apply_batch).

        Returns (collection, projection document after the write, applied?) where
        applied is False for an event already applied (a duplicate).
        """
        kind, entity_id, fact = fact_from_event(event)
        event_id = event["id"]
        update = {
            "$push": {"facts": fact, "applied": event_id},
            "$inc": {"rev": 1},
            "$set": {WRITER: writer},
            "$currentDate": {"updated_at": True},
        }
        _index_keys(kind, [fact], update)
        duplicate = {"$inc": {f"dups.{type_key(event['type'])}": 1, "rev": 1},
                     "$set": {WRITER: writer},
                     "$currentDate": {"updated_at": True}}
        space = self.db
        coll = space[kind]
        for _ in range(3):
            try:
                doc = coll.find_one_and_update(
                    {"_id": entity_id, "applied": {"$ne": event_id}}, update,
                    upsert=True, return_document=ReturnDocument.AFTER)
                doc[SOURCE_DB] = space.name
                return kind, doc, True
            except DuplicateKeyError:
                # Either the event is applied already, or another event of a new entity
                # inserted the document first; only the former is a duplicate.
                doc = coll.find_one_and_update(
                    {"_id": entity_id, "applied": event_id}, duplicate,
                    return_document=ReturnDocument.AFTER)
                if doc is not None:
                    doc[SOURCE_DB] = space.name
                    return kind, doc, False
        raise RuntimeError(f"could not apply {event_id} to {kind}/{entity_id}")

    def apply_batch(self, events, written=None, writer=""):
        """Apply a batch of events; returns [(collection, projection after the write)], one
        per entity the batch touches, each also handed to `written(collection, doc)` as
        soon as it is written (the live KPIs take it in, so their refreshes, which skip
        what `writer` wrote, need not read it back).

        All the events of one entity are ONE update of its projection: their facts and ids
        pushed, guarded so it matches only while none of those ids is applied yet (an id
        repeated within the batch is counted as a duplicate in the same write). The
        entities that have no projection yet are written together, one bulk write per
        collection, and read back (`_write_together`). The others, and any that bulk left
        unwritten, get a find-and-modify of their own; if one of its events was applied
        already, or another instance created the document first, its events go one by one
        through `apply`, which tells the cases apart.
        """
        groups = {}
        for event in events:
            kind, entity_id, fact = fact_from_event(event)
            groups.setdefault((kind, entity_id), []).append((event, fact))
        together = self._write_together(groups, writer)
        out = []
        for (kind, entity_id), items in groups.items():
            doc = together.get((kind, entity_id))
            if doc is None:
                doc = self._apply_together(kind, entity_id, items, writer)
            if doc is None:
                for event, _ in items:
                    _, doc, _ = self.apply(event, writer)
            if written is not None:
                written(kind, doc)
            out.append((kind, doc))
        return out

    def _write_together(self, groups, writer):
        """{(collection, entity id): projection after the write} for the batch's entities
        that had no projection yet, written in one bulk write per collection.

        Three round trips per collection, whatever the number of new entities: a read of
        which of the batch's entities have a projection already (they get a find-and-modify
        each, which tells duplicates apart), the bulk of upserts for the others (one
        SQLite transaction locally: less than half the database's CPU of an upsert each,
        and a tenth of the client's), and a read of the projections it made. Each upsert
        filters on this bulk's token (`MADE`) besides the `_id`: it matches no document, so
        it can only insert, and the projection it makes carries the token, which no later
        write changes. FerretDB v1 stops a bulk update at its first error whatever
        `ordered` says (a projection another instance made meanwhile, maybe from a copy of
        the same event) and reports neither which statement failed nor how many were
        applied, so the token is what tells. An entity the read back does not show as made
        by this bulk is left to the caller's own writes."""
        writes = {}
        for (kind, entity_id), items in groups.items():
            writes.setdefault(kind, {})[entity_id] = items
        done = {}
        space = self.db
        for kind, entities in writes.items():
            if len(entities) < 2:
                continue  # one entity: its find-and-modify is one round trip already
            coll = space[kind]
            known = {doc["_id"] for doc in coll.find({"_id": {"$in": list(entities)}},
                                                     {"_id": 1})}
            new = {entity_id: _together(kind, items, writer)
                   for entity_id, items in entities.items() if entity_id not in known}
            if len(new) < 2:
                continue
            token = uuid.uuid4().hex
            # the update command as is: pymongo's bulk_write fails on FerretDB's answer to
            # a bulk that met an error (it has no `n` nor `nModified`), and the write
            # errors it reports are not needed, the token tells
            coll.database.command("update", coll.name, ordered=False, updates=[
                {"q": {"_id": entity_id, MADE: token}, "u": update, "upsert": True}
                for entity_id, (_, update) in new.items()])
            for doc in coll.find({"_id": {"$in": list(new)}, MADE: token}):
                doc[SOURCE_DB] = space.name
                done[(kind, doc["_id"])] = doc
        return done

    def _apply_together(self, kind, entity_id, items, writer):
        """The projection after applying every event of `items` in one write, or None when
        the guard or the upsert found one of them applied (or the document just made)."""
        ids, update = _together(kind, items, writer)
        space = self.db
        # twice: the first may lose the insert of a new entity to another instance (which
        # got other events of it); the second then updates the document that instance made
        for _ in range(2):
            try:
                doc = space[kind].find_one_and_update(
                    {"_id": entity_id, "applied": {"$nin": ids}}, update,
                    upsert=True, return_document=ReturnDocument.AFTER)
            except DuplicateKeyError:
                continue
            doc[SOURCE_DB] = space.name
            return doc
        return None

    def all_projections(self, kind, batch_size=1000):
        return self.db[kind].find({}, LEAN).batch_size(batch_size)

    def changed_projections(self, kind, since, skip_writer=None):
        """The projections written at or after `since`, but for those `skip_writer` wrote
        last. Whole (but lean) in one query: FerretDB decodes every document a query
        returns, projected or not, so reading the revisions first and then the changed
        documents would decode each changed one twice."""
        query = {"updated_at": {"$gte": since}}
        if skip_writer:
            # ($ne as two ranges and a null: FerretDB's SQLite pushdown leaves out those
            # rows in SQL, before it decodes them, and would decode every one for a $ne)
            query["$or"] = [{WRITER: {"$lt": skip_writer}}, {WRITER: {"$gt": skip_writer}},
                            {WRITER: None}]
        return self.db[kind].find(query, LEAN)

    def cohort(self, start, end):
        """Lead projections created in [start, end) and the deals opened from them (the
        cohort funnel before an instance has restored its tallies; indexed both)."""
        leads = list(self.db.leads.find({"created_at": {"$gte": start, "$lt": end}}, LEAN))
        ids = [doc["_id"] for doc in leads]
        deals = []
        for i in range(0, len(ids), 500):
            deals.extend(self.db.deals.find({"lead_id": {"$in": ids[i:i + 500]}}, LEAN))
        return leads, deals

    # --- snapshots ---------------------------------------------------------------------------

    def read_snapshot(self):
        """(bytes, manifest) of the newest snapshot, or None when there is none or a chunk
        is missing (a writer removed it meanwhile)."""
        coll = self.db[SNAPSHOTS]
        manifest = coll.find_one({"_id": MANIFEST})
        if manifest is None:
            return None
        ids = _chunk_ids(manifest["snap"], manifest["chunks"])
        found = {doc["_id"]: bytes(doc["data"]) for doc in coll.find({"_id": {"$in": ids}})}
        if len(found) != len(ids):
            return None
        return b"".join(found[i] for i in ids), manifest

    def write_snapshot(self, blob, sha256, watermark, written_at, chunk_bytes, space=None):
        """Store a snapshot and make it the newest unless one with a later watermark is
        there already; drop the one it pushes out of the manifest. True when it is used.
        `space`: the set it belongs to (by default the active one)."""
        coll = (space or self.db)[SNAPSHOTS]
        snap = uuid.uuid4().hex
        chunks = [blob[i:i + chunk_bytes] for i in range(0, len(blob), chunk_bytes)] or [b""]
        ids = _chunk_ids(snap, len(chunks))
        for _id, data in zip(ids, chunks, strict=True):
            coll.insert_one({"_id": _id, "data": Binary(data)})
        current = {"snap": snap, "chunks": len(chunks), "sha256": sha256,
                   "watermark": watermark, "written_at": written_at}
        old = coll.find_one({"_id": MANIFEST})
        if old is None:
            try:
                coll.insert_one({"_id": MANIFEST, **current, "previous": None})
                return True
            except DuplicateKeyError:
                old = coll.find_one({"_id": MANIFEST})
        swapped = old["watermark"] < watermark and coll.update_one(
            {"_id": MANIFEST, "snap": old["snap"]},
            {"$set": {**current, "previous": {"snap": old["snap"], "chunks": old["chunks"]}}},
        ).modified_count == 1
        drop = (old.get("previous") if swapped
                else {"snap": snap, "chunks": len(chunks)})
        if drop:
            coll.delete_many({"_id": {"$in": _chunk_ids(drop["snap"], drop["chunks"])}})
        return swapped

    # --- rebuilds (the control record, in the configured database) --------------------------

    def rebuild_status(self):
        doc = self.base[CONTROL].find_one({"_id": ACTIVE}) or {}
        return {"active": doc.get("active") or self.base.name,
                "previous": doc.get("previous"), "rebuild": doc.get("rebuild")}

    def claim_rebuild(self, owner, target, now, stale_before):
        """Claim the one rebuild there may be (atomic): None while another one runs and
        beats; else the record as it was, so the caller can drop an abandoned target."""
        coll = self.base[CONTROL]
        try:
            coll.update_one({"_id": ACTIVE}, {"$setOnInsert": {"active": self.base.name}},
                            upsert=True)
        except DuplicateKeyError:  # another instance created it at the same moment
            pass
        return coll.find_one_and_update(
            {"_id": ACTIVE, "$or": [{"rebuild.state": {"$ne": RUNNING}},
                                    {"rebuild.heartbeat": {"$lt": stale_before}}]},
            {"$set": {"rebuild": {"state": RUNNING, "owner": owner, "target": target,
                                  "started_at": now, "heartbeat": now, "events": 0}}},
            return_document=ReturnDocument.BEFORE)

    def beat(self, owner, now, **progress):
        """Record progress; False when the claim was lost (taken over as stale)."""
        fields = {"rebuild.heartbeat": now, **{f"rebuild.{k}": v for k, v in progress.items()}}
        return self.base[CONTROL].update_one({"_id": ACTIVE, "rebuild.owner": owner},
                                             {"$set": fields}).modified_count == 1

    def switch_active(self, owner, target):
        """Make `target` the active database if this rebuild still holds its claim; the
        one it replaces stays as `previous` (a way back). Returns (replaced, the previous
        one before, now out of use) or None when the claim was lost."""
        doc = self.base[CONTROL].find_one_and_update(
            {"_id": ACTIVE, "rebuild.owner": owner, "rebuild.state": RUNNING},
            {"$set": {"active": target}}, return_document=ReturnDocument.BEFORE)
        if doc is None:
            return None
        replaced = doc.get("active") or self.base.name
        self.base[CONTROL].update_one({"_id": ACTIVE}, {"$set": {"previous": replaced}})
        return replaced, doc.get("previous")

    def finish_rebuild(self, owner, state, now, **info):
        fields = {"rebuild.state": state, "rebuild.finished_at": now,
                  **{f"rebuild.{k}": v for k, v in info.items()}}
        self.base[CONTROL].update_one({"_id": ACTIVE, "rebuild.owner": owner},
                                      {"$set": fields})

    def drop_projections(self, name):
        """Drop a set of projections that is out of use (never the active one)."""
        if not name or name == self.active_name():
            return
        space = Namespace(self.base, name)
        for collection in (*PROJECTIONS, SNAPSHOTS):
            space.drop_collection(collection)


def _together(kind, items, writer):
    """(the event ids, the update) that applies the (event, fact) `items` of one entity in
    one write: an id repeated among them counts as a duplicate of its type."""
    ids, facts, dups = [], [], {}
    for event, fact in items:
        if event["id"] in ids:
            key = f"dups.{type_key(event['type'])}"
            dups[key] = dups.get(key, 0) + 1
        else:
            ids.append(event["id"])
            facts.append(fact)
    update = {
        "$push": {"facts": {"$each": facts}, "applied": {"$each": ids}},
        "$inc": {"rev": 1, **dups},
        "$set": {WRITER: writer},
        "$currentDate": {"updated_at": True},
    }
    _index_keys(kind, facts, update)
    return ids, update


def _index_keys(kind, facts, update):
    """Top-level copies of join/window keys, so the funnel query can use an index."""
    if kind == "leads":
        created = [f["created_at"] for f in facts if f.get("created_at") is not None]
        if created:
            update["$min"] = {"created_at": min(created)}
    if kind == "deals":
        leads = [f["lead_id"] for f in facts if f.get("lead_id")]
        if leads:
            update.setdefault("$set", {})["lead_id"] = leads[-1]


def _chunk_ids(snap, count):
    return [f"{snap}.{n}" for n in range(count)]
