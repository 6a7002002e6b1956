"""Editing a lead (PATCH) and recycling it into nurture; pure, as leads.domain.

An edit sets the fields it names (custom fields merge; null removes one), keeps the
identity keys in step with e-mail and phone (the caller checks them against other leads
before the write), rescores, and records an `update` entry in the lead's timeline with
each field's old and new value and who changed it; `lead.updated` names the fields that
changed, never their values (events carry little personal data).

Recycling moves a disqualified lead, or an open one that did not convert, into `nurture`:
parked for later (out of the rep's cap of open leads, no response SLA), with its reason
recorded; from nurture it may be contacted, qualified or disqualified again.
"""
import uuid

from kit.changes import Change
from kit.errors import Conflict, Invalid
from leads import domain

EDITABLE = ("name", "company", "email", "phone", "country", "region", "custom")
NURTURE = "nurture"
RECYCLABLE = ("new", "contacted", "qualified", "disqualified")


def _entry(kind, now, actor, **extra):
    now = domain.to_millis(now)
    return {"id": str(uuid.uuid4()), "type": kind, "at": now, "actor": actor,
            "outcome": None, "summary": None, "duration_minutes": None, "recorded_at": now,
            **extra}


def edit(lead, data, now, rules, actor=None):
    """The change a PATCH makes, or None when it changes nothing."""
    if lead.get("erased"):
        raise Conflict("The lead's personal data was erased; it cannot be edited.")
    after = dict(lead)
    for name in EDITABLE:
        if name not in data:
            continue
        value = data[name]
        if name == "custom":
            value = {k: v for k, v in {**(lead.get("custom") or {}), **(value or {})}.items()
                     if v is not None}
        after[name] = value
    if "phone" in data or "country" in data:
        try:
            after["phone"] = domain.normalise_phone(after.get("phone"), after.get("country"))
        except ValueError as exc:
            raise Invalid(f"Not a valid phone number: {exc}",
                          errors={"phone": [f"Not a valid phone number: {exc}"]}) from None
    changed = [k for k in EDITABLE if after.get(k) != lead.get(k)]
    if not changed:
        return None
    fields = {k: after[k] for k in changed}
    if "email" in changed or "phone" in changed:
        fields.update(domain.identity_keys(lead["_id"], after.get("email"), after.get("phone")))
    entry = _entry("update", now, actor, outcome="updated", fields=changed,
                   changes={k: {"from": lead.get(k), "to": after[k]} for k in changed})
    fields.update(domain.rescore(after, domain.activity_counts(lead), rules))
    return domain.log(Change(set=fields, actor=actor, events=[
        ("lead.updated", {"lead_id": lead["_id"], "owner_id": lead.get("owner_id"),
                          "changed": changed, "score": fields["score"],
                          "grade": fields["grade"], "status": lead["status"]})]), lead, entry)


def identity_changes(change):
    """The real (not placeholder) e-mail and phone an edit gives the lead, to check against
    other leads: {} when it changes neither."""
    if change is None:
        return {}
    return {k: change.set[k] for k in ("email", "phone") if change.set.get(k)}


def recycle(lead, reason, now, actor=None):
    """Into nurture, with the reason; lead.recycled says from which status."""
    if lead["status"] not in RECYCLABLE:
        raise Conflict(f"A {lead['status']} lead cannot be recycled.", current=lead["status"],
                       allowed=domain.allowed_moves(lead["status"]))
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("A reason is required to recycle a lead.",
                      errors={"reason": ["A reason is required to recycle a lead."]})
    at = domain.to_millis(now)
    entry = _entry("recycle", now, actor, outcome=NURTURE, summary=reason)
    return domain.log(Change(
        set={"status": NURTURE, "reason": reason, "reason_text": None, "recycled_at": at,
             "response_due_at": None, "recycled_from": lead["status"]},
        actor=actor,
        events=[("lead.recycled", {
            "lead_id": lead["_id"], "owner_id": lead.get("owner_id"), "source": lead["source"],
            "from_status": lead["status"], "reason": reason, "recycled_at": at,
            "status": NURTURE})]), lead, entry)
