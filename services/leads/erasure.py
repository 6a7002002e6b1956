"""Erasure of a lead's personal data on request (GDPR art. 17, PIPL art. 47), pure.

What is personal is blanked: name, company, e-mail, phone, region, the custom fields not
configured as non-personal (ERASURE.keep_custom; by default every custom field goes),
and every activity's free text. The dedup keys go back to the lead's own never-colliding
ones, so the address may be captured again as a new lead. What stays is what the funnel
counts: the id, status and its times, source, country, UTM campaign, score and owner.
The lead holds its recent activities only: the store blanks the others in their buckets
(`blanked`) after the lead's write, on every request, so a repeat completes an erasure
that stopped between the two. The erasure is an `erasure` activity (who, when) and
`lead.erased`, which carries the id
and status only, so subscribers drop what they copied (deals: the contact).
Erasing an erased lead changes nothing (None): the request may be repeated safely.
"""
import uuid

from kit.changes import Change
from leads import domain

BLANKED = {"name": "", "company": None, "email": None, "phone": None, "region": None}
ACTIVITY_TEXT = ("summary", "changes")


def _personal_left(lead, keep_custom):
    if any(lead.get(k) != v for k, v in BLANKED.items()):
        return True
    if any(k not in keep_custom for k in (lead.get("custom") or {})):
        return True
    return any(a.get(k) for a in lead.get("activities") or () for k in ACTIVITY_TEXT
               if a.get("type") != "erasure")


def erase(lead, now, keep_custom=(), actor=None):
    """The change that erases the lead's personal data, or None when none is left."""
    if lead.get("erased") and not _personal_left(lead, keep_custom):
        return None
    now = domain.to_millis(now)
    activities = [{**a, **{k: None for k in ACTIVITY_TEXT}}
                  for a in lead.get("activities") or ()]
    entry = {"id": str(uuid.uuid4()), "type": "erasure", "at": now, "actor": actor,
             "outcome": "erased", "summary": None, "duration_minutes": None,
             "recorded_at": now}
    fields = {
        **BLANKED,
        "custom": {k: v for k, v in (lead.get("custom") or {}).items() if k in keep_custom},
        "activities": activities,
        **domain.identity_keys(lead["_id"], None, None),
        "erased": {"at": now, "by": actor},
    }
    return domain.log(Change(set=fields, actor=actor, events=[
        ("lead.erased", {"lead_id": lead["_id"], "status": lead["status"]})]), lead, entry)


def as_erased(lead, entries):
    """The lead's activities as its erasure left them: entries recorded up to its last
    erasure without their free text, whatever a bucket still held (a relay that read the
    lead before the erasure may copy an entry after the store blanked its bucket; the
    next erasure request blanks it there too)."""
    at = (lead.get("erased") or {}).get("at")
    if at is None:
        return entries
    return [(blanked(e) or e) if (e.get("recorded_at") or e.get("at")) <= at else e
            for e in entries]


def blanked(entry):
    """An activity as erasure leaves it (its free text gone), or None when it has none
    left: for the entries in the lead's buckets, which the store blanks after the lead."""
    if entry.get("type") == "erasure" or not any(entry.get(k) for k in ACTIVITY_TEXT):
        return None
    return {**entry, **{k: None for k in ACTIVITY_TEXT}}
