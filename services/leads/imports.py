"""Bulk import of a CSV: every row through the lead schema, dedup per row (against stored
leads, within the file, and against concurrent writers through the unique indexes),
assignment in bulk, and an Idempotency-Key that makes a repeat store nothing twice.

A row's id is derived from (key, line) when a key is given, so a retry after a crash half
way finds the rows it already stored instead of storing them again. That is safe only for the
same file: a key is bound to its body's hash, and an attempt holds the key by renewing a lease;
another request under the key is refused while the lease runs, and takes over once it lapsed.
"""
import datetime as dt
import hashlib
import uuid
from typing import NamedTuple

from marshmallow import ValidationError, fields

from kit import customfields as CF
from kit.config import setting
from kit.errors import Conflict, Invalid
from kit.fields import to_utc, utcnow
from kit.outbox import new_document
from leads import csvimport, domain
from leads.assignment import Assignment
from leads.schemas import HistoryIn, ImportedLead, ImportQuery, ImportResult, LeadIn

CHUNK = 500
ROW_NAMESPACE = uuid.UUID("6f1f8a52-3c1e-4a49-9d7e-2f0c1b7a9e11")


__all__ = ["ImportQuery", "ImportReport", "Limits", "limits", "run"]


class ImportReport(ImportResult):
    encoding = fields.String(metadata={"description": "the encoding the CSV was read with"})
    historical = fields.Boolean(metadata={"description": "the rows carried their history"})
    leads = fields.List(fields.Nested(ImportedLead), metadata={
        "description": "a historical import's stored leads: line -> id"})


class Limits(NamedTuple):
    max_bytes: int = 20 * 1024 * 1024
    max_rows: int = 10_000
    max_field_chars: int = 4096
    max_columns: int = 100
    lease_seconds: int = 120


def limits(config):
    """The IMPORT section of the service's config."""
    return Limits(*(int(setting(config, f"IMPORT.{name}", default))
                    for name, default in Limits._field_defaults.items()))


def row_id(key, line):
    if key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(ROW_NAMESPACE, f"{key}:{line}"))


def run(store, rules, raw, key=None, actor=None, limits=Limits(), charset=None,
        history=False, known=None):
    """Returns (result, replayed). With `history` (the caller is an admin: the service
    checks) each row carries its past (leads.domain.historical); such an import needs an
    Idempotency-Key, under which its record says who loaded what."""
    if history and key is None:
        raise Invalid("A historical import needs an Idempotency-Key: its record is the "
                      "audit of what was loaded, by whom.")
    digest = hashlib.sha256(raw)
    if charset:
        digest.update(b"\ncharset=" + charset.encode())  # the same bytes read another way
    if history:
        digest.update(b"\nhistory")
    body_hash = digest.hexdigest()
    if key is not None:
        recorded = store.find_import(key)
        if recorded is not None and claim(recorded, key, body_hash, limits) == "replay":
            return recorded["result"], True
    text, encoding = csvimport.decode(raw, charset)
    rows, errors = csvimport.parse(text, limits.max_rows, limits.max_field_chars,
                                   limits.max_columns, history=history)
    attempt = None
    if key is not None:
        attempt, replay = _begin(store, key, body_hash, limits, actor, history)
        if replay is not None:
            return replay, True

    invalid, valid = validate_rows(rows, utcnow() if history else None, known,
                                   store.field_defs("lead"))
    errors += invalid
    fresh = dedup_in_file(valid, errors)
    created = 0
    for start in range(0, len(fresh), CHUNK):
        if attempt is not None and not store.renew_import(key, attempt, utcnow()):
            raise Conflict("Another request took over this import; retry it.",
                           idempotency_key=key)
        created += _store_chunk(store, rules, fresh[start:start + CHUNK], key, actor, errors)

    errors.sort(key=lambda e: e["line"])
    refused = {e["line"] for e in errors}
    # a historical import says which lead each line became (its ids derive from the key)
    stored = ([{"line": line, "id": row_id(key, line)} for line, _ in fresh
               if line not in refused] if history else None)
    result = {
        "idempotency_key": key,
        "encoding": encoding,
        "rows": len(rows),
        "created": created,
        "duplicates": sum(1 for e in errors if e["reason"] == "duplicate"),
        "invalid": sum(1 for e in errors if e["reason"] == "invalid"),
        "historical": history,
        "errors": errors,
    }
    if stored is not None:
        result["leads"] = stored
    if attempt is not None:
        store.finish_import(key, attempt, result, utcnow())
    return result, False


def claim(recorded, key, body_hash, limits, now=None):
    """What a request may do with the import already recorded under its key: "replay" a
    finished one, "take_over" one whose attempt stopped renewing its lease (it crashed).
    Anything else would mix two files' rows under one key's row ids, or report rows that
    another attempt is still storing: a conflict."""
    if recorded.get("body_hash") not in (None, body_hash):
        raise Conflict("This Idempotency-Key was used for a different file.",
                       idempotency_key=key)
    if recorded.get("status") == "done":
        return "replay"
    renewed = recorded.get("heartbeat_at")
    lapses = dt.timedelta(seconds=limits.lease_seconds)
    if renewed is not None and to_utc(renewed) + lapses > (now or utcnow()):
        raise Conflict("An import with this Idempotency-Key is in progress; retry later.",
                       idempotency_key=key, import_status="running")
    return "take_over"


def _begin(store, key, body_hash, limits, actor=None, history=False):
    """Returns (this attempt's id, None) or (None, a finished result to replay)."""
    attempt = str(uuid.uuid4())
    recorded = store.begin_import(key, body_hash, attempt, utcnow(), by=actor,
                                  historical=history)
    if recorded is None:
        return attempt, None
    if claim(recorded, key, body_hash, limits) == "replay":
        return None, recorded["result"]
    if not store.take_over_import(key, recorded.get("attempt"), attempt, body_hash, utcnow()):
        raise Conflict("An import with this Idempotency-Key is in progress; retry later.",
                       idempotency_key=key, import_status="running")
    return attempt, None


def validate_rows(rows, now=None, known=None, definitions=None):
    """(errors, [(line, lead input)]); with `now` (a historical import) each input carries
    its `history`, checked against the domain's rules as of `now`; `known(sub)` says
    whether the owner a row names is in the people directory. Custom columns are checked
    against the leads' typed `definitions` (a header may be a field's key or label; cells
    are text: kit.customfields.check_text_values), the error naming the column."""
    schema, history_schema = LeadIn(), HistoryIn()
    errors, valid = [], []
    for line, row in rows:
        extra = row.pop("_extra_cells", 0)
        too_long = row.pop("_too_long", None)
        history = row.pop("history", {})
        if too_long:
            errors.append({"line": line, "reason": "invalid", "errors": too_long})
            continue
        try:
            data = schema.load(row)
        except ValidationError as exc:
            errors.append({"line": line, "reason": "invalid", "errors": exc.messages})
            continue
        if definitions and data.get("custom"):
            data["custom"], problems = CF.check_text_values(definitions, data["custom"])
            if problems:
                errors.append({"line": line, "reason": "invalid",
                               "errors": {"custom": problems}})
                continue
        if now is not None:
            try:
                data["history"] = history_schema.load(history)
            except ValidationError as exc:
                errors.append({"line": line, "reason": "invalid", "errors": exc.messages})
                continue
            problems = domain.history_errors(data["history"], now)
            owner = data["history"].get("owner_id")
            if known is not None and owner is not None and not known(owner):
                problems = {**(problems or {}), "owner_id": ["Unknown person."]}
            if problems:
                errors.append({"line": line, "reason": "invalid", "errors": problems})
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
    leads = [domain.new_lead(data, row_id(key, line),
                             data["history"]["created_at"] if "history" in data else now,
                             rules, actor) for line, data in chunk]
    assignments, holds = _assign(store, rules, leads, [data for _, data in chunk])
    docs = []
    for lead, chosen, (_, data) in zip(leads, assignments, chunk, strict=True):
        lead.update(domain.assignment_fields(chosen))
        pairs = domain.created_events(lead, chosen, historical="history" in data)
        if "history" in data:
            fields_, later = domain.historical(lead, data["history"], key, now, rules, actor)
            lead.update(fields_)
            pairs += later
        events = store.events_for(lead["_id"], 0, pairs, actor)
        lead["version"] = len(events)
        docs.append(new_document(lead, events))
    # a lead that is closed holds no slot in its owner's cap of open leads
    store.release_many(lead["owner_id"] for lead, held in zip(leads, holds, strict=True)
                       if held and lead["status"] not in domain.OPEN)
    holds = [held and lead["status"] in domain.OPEN
             for lead, held in zip(leads, holds, strict=True)]
    failed = store.insert_batch(docs)
    if not failed:
        return len(leads)
    # Every refused row gives back the slot this attempt claimed for it.
    store.release_many(leads[i]["owner_id"] for i in failed if holds[i])
    refused = [(chunk[i][0], leads[i]) for i in failed]
    return len(leads) - len(failed) + _explain_failures(store, refused, key, errors)


def _assign(store, rules, leads, inputs):
    """(assignment, whether it holds a slot of its owner's cap) per lead. A historical row
    that names its owner keeps that rep (over the cap, as a manager may assign); the
    others are routed by the rules."""
    result = [None] * len(leads)
    routed, held = [], []
    for i, data in enumerate(inputs):
        history = data.get("history") or {}
        owner = history.get("owner_id")
        if owner is None:
            routed.append(i)
            continue
        holds = history["status"] in domain.OPEN
        result[i] = (Assignment(owner_id=owner, team=rules.assignment.team_of(owner),
                                queue=None, rule="import"), holds)
        if holds:
            held.append(owner)
    store.hold_many(held)
    chosen = store.assign_batch([leads[i] for i in routed], rules.assignment)
    for i, assignment in zip(routed, chosen, strict=True):
        result[i] = (assignment, assignment.owner_id is not None)
    return [a for a, _ in result], [held for _, held in result]


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
