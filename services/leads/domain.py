"""Lead rules: identity (normalised e-mail and phone), the status state machine, activities
and first response, merge of duplicates, conversion and the response SLA.

Pure: functions take the lead as a dict and return a `Change` (fields to set, entries of
its activity log, events as (type, data)); the store writes it and its events in one
update. The activity log is bounded in the lead (kit.buckets): the lead holds its recent
entries and how many of each type it has (`activity_counts`, what scoring reads), the
store keeps the rest in buckets.

Every lead event (not the follow-up tasks') carries `status`, the lead's status after the
change, and every status change emits an event: so a subscriber (metrics) knows the lead's
status from the events alone, as the lead with the highest sequence says it.
"""
import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass

from kit import activities, reasons
from kit.changes import Change
from kit.errors import Conflict, Invalid
from leads import keys as lead_keys
from leads import scoring

STATUSES = ("new", "contacted", "qualified", "disqualified", "converted", "nurture")
# Disqualifying is allowed from every open status: spam and dead ends show up at any point.
TRANSITIONS = {
    "new": ("contacted", "disqualified"),
    "contacted": ("qualified", "disqualified"),
    "qualified": ("converted", "disqualified"),
    "disqualified": (),
    "converted": (),
    # parked by leads.editing.recycle; it comes back as any open lead would move on
    "nurture": ("contacted", "qualified", "disqualified"),
}
OPEN = frozenset(("new", "contacted", "qualified"))
# a nurtured lead is out of the rep's cap but still followed up
FOLLOWED = OPEN | {"nurture"}
# one activity model for leads and deals (kit.activities)
ACTIVITY_TYPES = activities.TYPES
RESPONSE_TYPES = activities.RESPONSE_TYPES
IDENTITY_FIELDS = ("name", "company", "email", "phone", "country", "region")
COUNTS = "activity_counts"


@dataclass(frozen=True)
class LeadRules:
    scoring: tuple = ()
    grades: dict = None
    assignment: object = None
    response_minutes: float = 0
    reassign_overdue: bool = False
    # the disqualify picklist (kit.reasons; DISQUALIFY.reasons), [{key, labels}]
    disqualify_reasons: tuple = ()


# --- identity --------------------------------------------------------------------------------


def normalise_email(email):
    if email is None:
        return None
    email = email.strip().lower()
    return email or None


def normalise_phone(phone, country=None):
    """E.164, or ValueError when it is no valid phone number (for `country` if local):
    a merely possible one ("12345" in CN has a plausible length) is no one's number."""
    if phone is None or not phone.strip():
        return None
    import phonenumbers  # here, not at the top: a tenth of the service's start-up imports

    try:
        number = phonenumbers.parse(phone, (country or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(str(exc)) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("Not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def identity_keys(lead_id, email, phone):
    """Values for the unique indexes. FerretDB v1 has no sparse or partial indexes, so a lead
    without an e-mail or phone gets a key of its own that can never collide."""
    return {
        "email_key": email or f"none:{lead_id}",
        "phone_key": phone or f"none:{lead_id}",
    }


def real_keys(email, phone):
    return {k: v for k, v in (("email_key", email), ("phone_key", phone)) if v}


def to_millis(moment):
    """MongoDB keeps milliseconds; trimming first keeps the document and its events equal."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# --- capture ---------------------------------------------------------------------------------


def new_lead(data, lead_id, now, rules, actor=None):
    """The document of a captured lead (without assignment) with its score."""
    now = to_millis(now)
    lead = {
        "_id": lead_id,
        "name": data["name"].strip(),
        "company": data.get("company"),
        "email": data.get("email"),
        "phone": data.get("phone"),
        "country": data.get("country"),
        "region": data.get("region"),
        "source": data["source"],
        "utm": data.get("utm") or {},
        "custom": data.get("custom") or {},
        "status": "new",
        "reason": None,
        "owner_id": None,
        "team": None,
        "queue": None,
        "activities": [],
        COUNTS: {},
        "created_by": actor,
        "created_at": now,
        "updated_at": now,
        "contacted_at": None,
        "first_response_seconds": None,
        "response_due_at": (now + dt.timedelta(minutes=rules.response_minutes)
                            if rules.response_minutes > 0 else None),
        "converted_at": None,
        "amount": None,
        "currency": None,
    }
    lead.update(identity_keys(lead_id, lead["email"], lead["phone"]))
    lead.update(lead_keys.keys(lead))
    lead.update(rescore(lead, {}, rules))
    return lead


def created_events(lead, assignment, historical=False):
    """lead.created then lead.assigned, for a new lead and where it was routed; a
    historical import's lead.assigned says so (notify tells no one of a past assignment)."""
    created = {k: lead.get(k) for k in (
        "name", "company", "email", "phone", "country", "region", "source", "score", "grade",
        "created_at")}
    created.update(lead_id=lead["_id"], utm=lead.get("utm") or None,
                   owner_id=assignment.owner_id, status=lead["status"])
    assigned = assigned_data(lead, assignment)
    if historical:
        assigned["historical"] = True
    return [("lead.created", created), ("lead.assigned", assigned)]


def assigned_data(lead, assignment, previous_owner_id=None):
    return {
        "lead_id": lead["_id"], "owner_id": assignment.owner_id, "queue": assignment.queue,
        "previous_owner_id": previous_owner_id, "team": assignment.team,
        "rule": assignment.rule, "status": lead["status"],
    }


def assignment_fields(assignment):
    return {"owner_id": assignment.owner_id, "team": assignment.team, "queue": assignment.queue,
            "assigned_by_rule": assignment.rule}


def rescore(lead, activities, rules):
    """`activities`: {type: n} (activity_counts) or a list of activities."""
    points, grade, fired = scoring.score(lead, activities, rules.scoring, rules.grades)
    return {"score": points, "grade": grade, "score_rules": fired}


def activity_counts(lead):
    """{activity type: n} of the lead's whole log: kept on the lead, since the lead holds
    only its recent entries; a lead stored before that holds them all."""
    if COUNTS in lead:
        return dict(lead[COUNTS] or {})
    return scoring.counts_of(lead.get("activities") or ())


def log(change, lead, *entries):
    """`change` with `entries` added to the lead's activity log, and counted."""
    counts = dict(change.set[COUNTS]) if COUNTS in change.set else activity_counts(lead)
    for entry in entries:
        counts[entry["type"]] = counts.get(entry["type"], 0) + 1
    change.log.extend(entries)
    change.set[COUNTS] = counts
    return change


# --- status ----------------------------------------------------------------------------------


def allowed_moves(status):
    return list(TRANSITIONS[status])


def check_move(current, target):
    if target not in TRANSITIONS.get(current, ()):
        raise Conflict(f"A {current} lead cannot move to {target}.", current=current,
                       allowed=allowed_moves(current))


def change_status(lead, target, reason, now, rules, actor=None, reason_text=None):
    """Move a lead through the state machine; `converted` goes through `convert`. A
    disqualification's reason is a key of the rules' picklist, or other + text."""
    if target == "converted":
        return convert(lead, None, None, now, actor)
    check_move(lead["status"], target)
    if target == "disqualified":
        if not (reason or "").strip():
            raise Invalid("A reason is required to disqualify a lead.",
                          errors={"reason": ["A reason is required to disqualify a lead."]})
        if rules.disqualify_reasons:
            reason, reason_text = reasons.resolve(rules.disqualify_reasons, reason,
                                                  reason_text)
    change = Change(set={"status": target, "reason": (reason or "").strip() or None,
                         "response_due_at": None}, actor=actor)
    if target == "disqualified":
        change.set["reason_text"] = reason_text
    if target == "contacted":
        _first_response(lead, now, change)
        if not change.events:  # answered before (an activity): the status change still tells
            seconds = lead.get("first_response_seconds")
            if seconds is None:
                seconds = (lead["contacted_at"] - lead["created_at"]).total_seconds()
            change.events.append(("lead.contacted", _contacted_data(
                lead, lead["contacted_at"], seconds, target)))
    elif target == "qualified":
        change.set["qualified_at"] = to_millis(now)
        change.events.append(("lead.qualified", {
            "lead_id": lead["_id"], "owner_id": lead.get("owner_id"), "source": lead["source"],
            "score": lead["score"], "grade": lead["grade"], "status": target,
            "qualified_at": change.set["qualified_at"]}))
    elif target == "disqualified":
        change.events.append(("lead.disqualified", {
            "lead_id": lead["_id"], "owner_id": lead.get("owner_id"), "source": lead["source"],
            "reason": change.set["reason"], "reason_text": change.set["reason_text"],
            "status": target}))
    return change


def _first_response(lead, at, change):
    """The first response sets the response time once and stops the response SLA clock."""
    if lead.get("contacted_at") is not None:
        return
    at = to_millis(max(at, lead["created_at"]))
    seconds = (at - lead["created_at"]).total_seconds()
    change.set.update(contacted_at=at, first_response_seconds=seconds, response_due_at=None)
    change.events.append(("lead.contacted", _contacted_data(
        lead, at, seconds, change.set.get("status", lead["status"]))))


def _contacted_data(lead, at, seconds, status):
    """lead.contacted: the first response's time, and the status the lead has now (an
    activity on a new or disqualified lead answers it without changing its status)."""
    return {"lead_id": lead["_id"], "owner_id": lead.get("owner_id"), "source": lead["source"],
            "created_at": lead["created_at"], "contacted_at": at,
            "first_response_seconds": seconds, "status": status}


def released_owner(before, after):
    """The rep whose slot in the cap of open leads this change frees, or None: a closed
    lead or a new owner frees the previous owner's slot (a new owner's slot is claimed
    before the write)."""
    owner = before.get("owner_id")
    if not owner or before["status"] not in OPEN:
        return None
    if after["status"] not in OPEN or after.get("owner_id") != owner:
        return owner
    return None


def reclaimed_owner(before, after):
    """The rep whose slot a lead takes again when it comes back from nurture, or None."""
    owner = after.get("owner_id")
    if owner and before["status"] not in OPEN and after["status"] in OPEN:
        return owner
    return None


# --- activities ------------------------------------------------------------------------------


def add_activity(lead, activity, now, rules, actor=None):
    """Returns (change, the stored activity). The activity is logged in the lead's own
    write so that it, its effect on the score and a first response are one write."""
    entry = activities.entry(activity, now, actor)
    change = log(Change(actor=actor), lead, entry)
    change.set.update(rescore(lead, change.set[COUNTS], rules))
    if entry["type"] in RESPONSE_TYPES:
        _first_response(lead, min(entry["at"], now), change)
    return change, entry


def timeline(lead):
    """The lead's activities in time order (`activities`: its whole log)."""
    return activities.timeline(lead.get("activities") or [])


# --- duplicates ------------------------------------------------------------------------------


class DuplicateLead(Conflict):
    """A capture with the e-mail or phone of a lead that exists."""

    def __init__(self, existing_id):
        super().__init__("A lead with this e-mail or phone exists.", existing_id=existing_id)
        self.existing_id = existing_id


def merge_target(on_duplicate, duplicate):
    """The lead a duplicate capture merges into; only when the caller asked for a merge,
    else the duplicate is refused (409 naming the existing lead)."""
    if on_duplicate != "merge":
        raise duplicate
    return duplicate.existing_id


def merge(lead, incoming, now, rules, actor=None):
    """Fold a duplicate capture into the existing lead: fill what is empty, add new UTM and
    custom keys, never overwrite what a rep may already have corrected. Recorded as an
    activity so the timeline shows what came in."""
    updates = {}
    for name in IDENTITY_FIELDS:
        value = incoming.get(name)
        if value not in (None, "") and lead.get(name) in (None, ""):
            updates[name] = value
    for name in ("utm", "custom"):
        added = {k: v for k, v in (incoming.get(name) or {}).items()
                 if k not in (lead.get(name) or {})}
        if added:
            updates[name] = {**(lead.get(name) or {}), **added}
    if "email" in updates:
        updates["email_key"] = updates["email"]
    if "phone" in updates:
        updates["phone_key"] = updates["phone"]
    entry = {
        "id": str(uuid.uuid4()), "type": "merge", "at": to_millis(now), "actor": actor,
        "outcome": "merged", "summary": "Duplicate capture from " + incoming["source"],
        "fields": sorted(k for k in updates if not k.endswith("_key")),
        "duration_minutes": None, "recorded_at": to_millis(now),
    }
    change = log(Change(set=updates, actor=actor), lead, entry)
    updates.update(rescore({**lead, **updates}, updates[COUNTS], rules))
    return change, entry["fields"]


# --- conversion ------------------------------------------------------------------------------


def convert(lead, amount, currency, now, actor=None, pipeline_id=None):
    if lead["status"] == "converted":
        raise Conflict("The lead is already converted.", current="converted", allowed=[])
    if lead["status"] != "qualified":
        raise Conflict(f"Only a qualified lead can be converted; this one is {lead['status']}.",
                       current=lead["status"], allowed=allowed_moves(lead["status"]))
    now = to_millis(now)
    change = Change(set={"status": "converted", "converted_at": now,
                         "amount": str(amount) if amount is not None else None,
                         "currency": currency, "response_due_at": None}, actor=actor)
    change.events.append(("lead.converted", {
        "lead_id": lead["_id"], "owner_id": lead.get("owner_id"), "name": lead["name"],
        "company": lead.get("company"), "email": lead.get("email"), "phone": lead.get("phone"),
        "country": lead.get("country"), "source": lead["source"], "amount": amount,
        "currency": currency, "created_at": lead["created_at"], "converted_at": now,
        "pipeline_id": pipeline_id, "status": "converted"}))
    return change


# --- assignment changes ----------------------------------------------------------------------


def reassign(lead, assignment, actor=None):
    """A manager's reassignment; None when the lead already sits there."""
    if lead["status"] not in OPEN:
        raise Conflict(f"A {lead['status']} lead cannot be reassigned.", current=lead["status"])
    if (lead.get("owner_id"), lead.get("queue")) == (assignment.owner_id, assignment.queue):
        return None
    return Change(set=assignment_fields(assignment), actor=actor, events=[
        ("lead.assigned", assigned_data(lead, assignment, lead.get("owner_id")))])


# --- response SLA and follow-ups -------------------------------------------------------------


def response_overdue(lead, now, reassignment=None):
    """The response SLA of a lead nobody contacted ran out: report it once (and move it to
    someone else when configured). None when it is not due: its clock was stopped (a
    response, a status move, an earlier report) or has time left."""
    due_at = lead.get("response_due_at")
    if due_at is None or due_at > now or lead["status"] != "new":
        return None
    if reassignment is not None and reassignment.owner_id is None:
        reassignment = None  # nobody else is free: the owner keeps it rather than a queue
    overdue_minutes = int((now - lead["created_at"]).total_seconds() // 60)
    change = Change(set={"response_due_at": None, "response_overdue_at": to_millis(now)})
    change.events.append(("lead.response_overdue", {
        "lead_id": lead["_id"], "owner_id": lead.get("owner_id"),
        "created_at": lead["created_at"], "overdue_minutes": overdue_minutes,
        "reassigned_to": reassignment.owner_id if reassignment else None,
        "status": lead["status"]}))
    if reassignment is not None:
        reassignment = dataclasses.replace(reassignment, rule="response_overdue")
        change.set.update(assignment_fields(reassignment))
        change.events.append(("lead.assigned", assigned_data(
            lead, reassignment, lead.get("owner_id"))))
    return change


def new_task(lead, due_at, note, task_id, now, actor=None):
    if lead["status"] not in FOLLOWED:
        raise Conflict(f"A {lead['status']} lead needs no follow-up.", current=lead["status"])
    return {
        "_id": task_id, "lead_id": lead["_id"], "due_at": to_millis(due_at), "note": note,
        "owner_id": lead.get("owner_id"), "created_by": actor, "created_at": to_millis(now),
        "fired": False, "fired_at": None, "version": 0, "status": activities.OPEN,
    }


def fire_followup(task, lead, now):
    """A due follow-up fires once: lead.followup_due to the lead's owner, or, for a lead
    that is closed (or gone), retired quietly since nobody needs the reminder."""
    if task["fired"]:
        return None
    change = Change(set={"fired": True, "fired_at": now})
    if lead is None or lead["status"] not in FOLLOWED:
        change.set["cancelled"] = True
    else:
        change.events.append(followup_due(task, lead.get("owner_id")))
    return change


def followup_due(task, owner_id):
    return ("lead.followup_due", {
        "lead_id": task["lead_id"], "task_id": task["_id"], "owner_id": owner_id,
        "due_at": task["due_at"], "note": task.get("note")})


# --- historical import -----------------------------------------------------------------------

# The times each final status needs (in funnel order), and those it may have: the state
# machine's path to that status.
HISTORY_PATHS = {
    "new": ((), ()),
    "contacted": (("contacted_at",), ()),
    "qualified": (("contacted_at", "qualified_at"), ()),
    "converted": (("contacted_at", "qualified_at", "converted_at"), ()),
    "disqualified": (("disqualified_at",), ("contacted_at", "qualified_at")),
}
HISTORY_TIMES = ("contacted_at", "qualified_at", "converted_at", "disqualified_at")
CONVERSION_FIELDS = ("amount", "currency", "pipeline_id")


def history_errors(history, now):
    """What is wrong with a lead's past as a historical import gives it ({field: [...]},
    empty when nothing): each time its status needs and none it may not have, in funnel
    order (created, contacted, qualified, then converted or disqualified), none in the
    future; a disqualified lead has a reason, only a converted one an amount or pipeline."""
    status = history.get("status") or "new"
    needed, optional = HISTORY_PATHS[status]
    errors = {}
    for name in HISTORY_TIMES:
        given = history.get(name) is not None
        if name in needed and not given:
            errors[name] = [f"Required for a {status} lead."]
        elif given and name not in needed and name not in optional:
            errors[name] = [f"A {status} lead has no {name}."]
    if status == "disqualified":
        if not (history.get("reason") or "").strip():
            errors["reason"] = ["Required for a disqualified lead."]
        if history.get("qualified_at") is not None and history.get("contacted_at") is None:
            errors["contacted_at"] = ["Required for a lead that was qualified."]
    elif history.get("reason") is not None:
        errors["reason"] = ["Only a disqualified lead has one."]
    for name in CONVERSION_FIELDS:
        if history.get(name) is not None and status != "converted":
            errors.setdefault(name, []).append("Only a converted lead has one.")
    order = [n for n in ("created_at", "contacted_at", "qualified_at", "converted_at",
                         "disqualified_at") if history.get(n) is not None]
    for earlier, later in zip(order, order[1:], strict=False):
        if history[later] < history[earlier]:
            errors.setdefault(later, []).append(f"Must not be before {earlier}.")
    for name in order:
        if history[name] > now:
            errors.setdefault(name, []).append("Must not be in the future.")
    return errors


def historical(lead, history, key, now, rules, actor=None):
    """A lead's past as an admin imported it: the moves of the state machine at their
    historical times (their events carry those times in their data; the envelopes carry
    the real time of the import) and an `import` activity that says who loaded it, when,
    and that it was history. Returns (fields to set, events), to apply after the lead's
    creation events. The response SLA clock is not started: the lead was answered or not
    back then, and a clock run out months ago is no reason to alert anyone today."""
    errors = history_errors(history, now)
    if errors:
        raise Invalid("The lead's history is inconsistent.", errors=errors)
    current = {**lead, "response_due_at": None}
    events = []
    status = history.get("status") or "new"
    steps = [("contacted", history.get("contacted_at")),
             ("qualified", history.get("qualified_at"))]
    if status == "converted":
        steps.append(("converted", history["converted_at"]))
    if status == "disqualified":
        steps.append(("disqualified", history["disqualified_at"]))
    for target, at in steps:
        if at is None:
            continue
        if target == "converted":
            change = convert(current, history.get("amount"), history.get("currency"), at,
                             actor, pipeline_id=history.get("pipeline_id"))
        else:
            reason = history.get("reason") if target == "disqualified" else None
            change = change_status(current, target, reason, at, rules, actor)
        current.update(change.set)
        events.extend(change.events)
    recorded = to_millis(now)
    entry = {
        "id": str(uuid.uuid4()), "type": "import", "at": lead["created_at"], "actor": actor,
        "outcome": "historical", "duration_minutes": None, "recorded_at": recorded,
        "summary": f"Historical import (up to {status})"
                   + (f", Idempotency-Key {key}" if key else ""),
    }
    imported = {"by": actor, "at": recorded, "historical": True, "idempotency_key": key}
    fields = {k: v for k, v in current.items() if v != lead.get(k)}
    fields.update(response_due_at=None, activities=[entry], imported=imported,
                  updated_at=recorded, **{COUNTS: scoring.counts_of([entry])})
    return fields, events
