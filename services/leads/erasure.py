"""Erasure of a lead's personal data on request (GDPR art. 17, PIPL art. 47), pure.

What is personal is blanked: name, company, e-mail, phone, region, the custom fields not
configured as non-personal (ERASURE.keep_custom; by default every custom field goes),
and every activity's free text. The dedup keys go back to the lead's own never-colliding
ones, so the address may be captured again as a new lead. What stays is what the funnel
counts: the id, status and its times, source, country, UTM campaign, score and owner.
The erasure is an `erasure` activity (who, when) and `lead.erased`, which carries the id
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
    activities.append({"id": str(uuid.uuid4()), "type": "erasure", "at": now,
                       "actor": actor, "outcome": "erased", "summary": None,
                       "duration_minutes": None, "recorded_at": now})
    fields = {
        **BLANKED,
        "custom": {k: v for k, v in (lead.get("custom") or {}).items() if k in keep_custom},
        "activities": activities,
        **domain.identity_keys(lead["_id"], None, None),
        "erased": {"at": now, "by": actor},
    }
    return Change(set=fields, actor=actor, events=[
        ("lead.erased", {"lead_id": lead["_id"], "status": lead["status"]})])
