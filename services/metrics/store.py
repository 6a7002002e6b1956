"""MongoDB queries of the metrics service; nothing else touches its collections.

One projection document per entity (collections leads, deals, quotes, tickets). Applying an
event is ONE find-and-modify on that document: it pushes the fact and the event id into
`applied` only when the id is not there yet, bumps `rev` and stamps `updated_at` — so the
effect and the proof it was applied are one atomic write. A duplicate bumps a per-type
duplicate counter on the same document instead (also one write).

Snapshots of the KPI state (see snapshot.py) live in `snapshots`: chunk documents
`<snapshot id>.<n>` and one manifest `kpis` naming the newest complete snapshot, its
checksum and watermark, and the one before it (kept so a reader that started on it can
finish); everything is read by `_id`.
"""
import uuid

from bson import Binary
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from kit.fields import utcnow
from kit.mongo import BaseStore
from metrics.domain import CONTRIBUTIONS, fact_from_event, type_key

PROJECTIONS = tuple(CONTRIBUTIONS)
# Fields the KPIs never read back (the applied ids can be many).
LEAN = {"applied": 0}
SNAPSHOTS = "snapshots"
MANIFEST = "kpis"


class MetricsStore(BaseStore):
    outbox_collections = ()

    def ensure_indexes(self):
        for name in PROJECTIONS:
            self.db[name].create_index([("updated_at", ASCENDING)])
        self.db.leads.create_index([("created_at", ASCENDING)])
        self.db.deals.create_index([("lead_id", ASCENDING)])

    def apply(self, event):
        """Apply one event to its entity's projection.

        Returns (collection, projection document after the write, applied?) where
        applied is False for an event already applied (a duplicate).
        """
        kind, entity_id, fact = fact_from_event(event)
        event_id = event["id"]
        now = utcnow()
        update = {
            "$push": {"facts": fact, "applied": event_id},
            "$inc": {"rev": 1},
            "$set": {"updated_at": now},
        }
        _index_keys(kind, [fact], update)
        duplicate = {"$inc": {f"dups.{type_key(event['type'])}": 1, "rev": 1},
                     "$set": {"updated_at": now}}
        coll = self.db[kind]
        for _ in range(3):
            try:
                doc = coll.find_one_and_update(
                    {"_id": entity_id, "applied": {"$ne": event_id}}, update,
                    upsert=True, return_document=ReturnDocument.AFTER)
                return kind, doc, True
            except DuplicateKeyError:
                # Either the event is applied already, or another event of a new entity
                # inserted the document first; only the former is a duplicate.
                doc = coll.find_one_and_update(
                    {"_id": entity_id, "applied": event_id}, duplicate,
                    return_document=ReturnDocument.AFTER)
                if doc is not None:
                    return kind, doc, False
        raise RuntimeError(f"could not apply {event_id} to {kind}/{entity_id}")

    def apply_batch(self, events):
        """Apply a batch of events; returns [(collection, projection after the write)], one
        per entity the batch touches.

        All the events of one entity are ONE find-and-modify: their facts and ids pushed,
        guarded so it matches only while none of those ids is applied yet (an id repeated
        within the batch is counted as a duplicate in the same write). If one of them was
        applied already (a redelivery), or another instance created the document first,
        that entity's events go one by one through `apply`, which tells the cases apart.
        (One write per entity, not one bulk write per batch: FerretDB v1 stops a bulk
        update at its first error whatever `ordered` says, and reports neither which
        statement failed nor how many were applied; its cost is per statement anyway.)
        """
        groups = {}
        for event in events:
            kind, entity_id, fact = fact_from_event(event)
            groups.setdefault((kind, entity_id), []).append((event, fact))
        out = []
        for (kind, entity_id), items in groups.items():
            doc = self._apply_together(kind, entity_id, items)
            if doc is None:
                for event, _ in items:
                    _, doc, _ = self.apply(event)
            out.append((kind, doc))
        return out

    def _apply_together(self, kind, entity_id, items):
        """The projection after applying every event of `items` in one write, or None when
        the guard or the upsert found one of them applied (or the document just made)."""
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
            "$set": {"updated_at": utcnow()},
        }
        _index_keys(kind, facts, update)
        try:
            return self.db[kind].find_one_and_update(
                {"_id": entity_id, "applied": {"$nin": ids}}, update,
                upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            return None

    def all_projections(self, kind, batch_size=1000):
        return self.db[kind].find({}, LEAN).batch_size(batch_size)

    def changed_revisions(self, kind, since):
        """(id, rev) of the projections written at or after `since`."""
        cursor = self.db[kind].find({"updated_at": {"$gte": since}}, {"rev": 1})
        return [(doc["_id"], doc.get("rev", 0)) for doc in cursor]

    def projections(self, kind, ids):
        docs = []
        ids = list(ids)
        for i in range(0, len(ids), 500):
            docs.extend(self.db[kind].find({"_id": {"$in": ids[i:i + 500]}}, LEAN))
        return docs

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

    def write_snapshot(self, blob, sha256, watermark, written_at, chunk_bytes):
        """Store a snapshot and make it the newest unless one with a later watermark is
        there already; drop the one it pushes out of the manifest. True when it is used."""
        coll = self.db[SNAPSHOTS]
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


def _index_keys(kind, facts, update):
    """Top-level copies of join/window keys, so the funnel query can use an index."""
    if kind == "leads":
        created = [f["created_at"] for f in facts if f.get("created_at") is not None]
        if created:
            update["$min"] = {"created_at": min(created)}
    if kind == "deals":
        leads = [f["lead_id"] for f in facts if f.get("lead_id")]
        if leads:
            update["$set"]["lead_id"] = leads[-1]


def _chunk_ids(snap, count):
    return [f"{snap}.{n}" for n in range(count)]
