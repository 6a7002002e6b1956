"""Idempotent consumers: the effect and the proof it was applied are one atomic write.

Two shapes, both single-document and so atomic on MongoDB and FerretDB alike:
- `apply_once`: update an entity only if this event id is not yet in its `applied` list,
  adding it in the same update (for effects on an existing document); `once` gives the
  filter and update of such a write to writers that build their own (kit.versioned);
- `record_fact`: insert a document keyed by the event id (for effects that are facts).
A separate "processed" marker written before or after the effect would not be enough.
"""
from pymongo.errors import DuplicateKeyError

APPLIED = "applied"


def once(filter_, update, event_id):
    """(filter, update) that apply `update` only if `event_id` is not yet applied, and
    record it in the same write."""
    update = dict(update)
    update["$push"] = {**update.get("$push", {}), APPLIED: event_id}
    return {**filter_, APPLIED: {"$ne": event_id}}, update


def apply_once(collection, filter_, update, event_id, upsert=False):
    """Apply `update` to the document matching `filter_` unless `event_id` was applied.

    Returns True when this call changed the document, False for a duplicate.
    """
    filter_, update = once(filter_, update, event_id)
    try:
        result = collection.update_one(filter_, update, upsert=upsert)
    except DuplicateKeyError:
        # upsert raced with (or followed) an earlier application: the filter missed
        # because the event is already applied, and the upsert hit the same _id.
        return False
    return bool(result.modified_count or result.upserted_id is not None)


def record_fact(collection, event_id, doc):
    """Insert `doc` under `_id = event_id`; returns False if it was already there."""
    try:
        collection.insert_one({**doc, "_id": event_id})
    except DuplicateKeyError:
        return False
    return True
