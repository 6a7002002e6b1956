"""Bulk import of a CSV: every row through the lead schema, dedup per row (against stored
leads, within the file, and against concurrent writers through the unique indexes),
assignment in bulk, and an Idempotency-Key that makes a repeat store nothing twice.

A row's id is derived from (key, line) when a key is given, so a retry after a crash half
way finds the rows it already stored instead of storing them again.
"""
import hashlib
import uuid

from marshmallow import ValidationError

from kit.errors import Conflict
from kit.fields import utcnow
from kit.outbox import new_document
from leads import csvimport, domain
from leads.schemas import LeadIn

CHUNK = 500
ROW_NAMESPACE = uuid.UUID("6f1f8a52-3c1e-4a49-9d7e-2f0c1b7a9e11")


def row_id(key, line):
    if key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(ROW_NAMESPACE, f"{key}:{line}"))


def run(store, rules, raw, key=None, actor=None, max_rows=10_000):
    """Returns (result, replayed)."""
    body_hash = hashlib.sha256(raw).hexdigest()
    if key is not None:
        done = store.find_import(key)
        if done is not None and done.get("status") == "done":
            if done.get("body_hash") != body_hash:
                raise Conflict("This Idempotency-Key was used for a different file.",
                               idempotency_key=key)
            return done["result"], True
    rows = csvimport.parse(csvimport.decode(raw), max_rows)
    if key is not None:
        store.begin_import(key, body_hash, utcnow())

    errors, valid = validate_rows(rows)
    fresh = dedup_in_file(valid, errors)
    created = 0
    for start in range(0, len(fresh), CHUNK):
        created += _store_chunk(store, rules, fresh[start:start + CHUNK], key, actor, errors)

    errors.sort(key=lambda e: e["line"])
    result = {
        "idempotency_key": key,
        "rows": len(rows),
        "created": created,
        "duplicates": sum(1 for e in errors if e["reason"] == "duplicate"),
        "invalid": sum(1 for e in errors if e["reason"] == "invalid"),
        "errors": errors,
    }
    if key is not None:
        store.finish_import(key, result, utcnow())
    return result, False


def validate_rows(rows):
    schema = LeadIn()
    errors, valid = [], []
    for line, row in rows:
        extra = row.pop("_extra_cells", 0)
        try:
            data = schema.load(row)
        except ValidationError as exc:
            errors.append({"line": line, "reason": "invalid", "errors": exc.messages})
            continue
        if extra:
            errors.append({"line": line, "reason": "invalid", "errors": {
                "_row": [f"{extra} more cell(s) than the header has columns."]}})
            continue
        valid.append((line, data))
    return errors, valid


def dedup_in_file(valid, errors):
    """Keep the first row for each e-mail and phone; later ones are duplicates of it."""
    seen = {}
    fresh = []
    for line, data in valid:
        keys = list(domain.real_keys(data["email"], data["phone"]).items())
        first = next((seen[k] for k in keys if k in seen), None)
        if first is not None:
            errors.append({"line": line, "reason": "duplicate", "duplicate_of_line": first})
            continue
        for k in keys:
            seen[k] = line
        fresh.append((line, data))
    return fresh


def _store_chunk(store, rules, chunk, key, actor, errors):
    """Insert first and let the unique indexes find duplicates: reads by e-mail or phone
    are full scans on FerretDB v1 (only _id lookups use an index), inserts are not."""
    now = utcnow()
    leads = [domain.new_lead(data, row_id(key, line), now, rules, actor) for line, data in chunk]
    assignments = store.assign_batch(leads, rules.assignment)
    docs = []
    for lead, chosen in zip(leads, assignments, strict=True):
        lead.update(domain.assignment_fields(chosen))
        events = store.events_for(lead["_id"], 0, domain.created_events(lead, chosen), actor)
        lead["version"] = len(events)
        docs.append(new_document(lead, events))
    failed = store.insert_batch(docs)
    if not failed:
        return len(leads)
    # Every refused row gives back the slot this attempt claimed for it.
    store.release_many(leads[i]["owner_id"] for i in failed)
    refused = [(chunk[i][0], leads[i]) for i in failed]
    return len(leads) - len(failed) + _explain_failures(store, refused, key, errors)


def _explain_failures(store, refused, key, errors):
    """A refused row either was stored by an earlier attempt with this key (same derived
    id) or duplicates a lead stored before (or meanwhile, by a concurrent writer)."""
    ours = {lead["_id"] for _, lead in refused if key is not None and store.exists(lead["_id"])}
    others = [(line, lead) for line, lead in refused if lead["_id"] not in ours]
    existing = store.existing_by_keys(
        [lead["email"] for _, lead in others if lead["email"]],
        [lead["phone"] for _, lead in others if lead["phone"]])
    for line, lead in others:
        hit = existing.get(lead["email"]) or existing.get(lead["phone"])
        errors.append({"line": line, "reason": "duplicate", "existing_id": hit})
    return len(ours)
