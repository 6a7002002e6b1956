"""A quote's lifecycle: which action each status allows. Pure, one table.

draft -> submitted -> approved | rejected -> sent -> accepted | declined | expired.
A draft is edited in place; anything after it is revised instead: revising makes version
n+1 (a draft) and the version it replaces is superseded. Any quote still open may be
voided (by a person, or because its deal was lost). Accepted, declined, expired, voided
and superseded are final.
"""
from kit.errors import Conflict

DRAFT = "draft"
SUBMITTED = "submitted"
APPROVED = "approved"
REJECTED = "rejected"
SENT = "sent"
ACCEPTED = "accepted"
DECLINED = "declined"
EXPIRED = "expired"
VOIDED = "voided"
SUPERSEDED = "superseded"

STATUSES = (DRAFT, SUBMITTED, APPROVED, REJECTED, SENT, ACCEPTED, DECLINED, EXPIRED, VOIDED,
            SUPERSEDED)
FINAL = frozenset({ACCEPTED, DECLINED, EXPIRED, VOIDED, SUPERSEDED})
# a quote that may still become a sale: what deal.lost voids
OPEN = frozenset(STATUSES) - FINAL

# action -> the statuses it is allowed from
ACTIONS = {
    "edit": frozenset({DRAFT}),
    "submit": frozenset({DRAFT}),
    "approve": frozenset({SUBMITTED}),
    "reject": frozenset({SUBMITTED}),
    "send": frozenset({APPROVED}),
    "accept": frozenset({SENT}),
    "decline": frozenset({SENT}),
    "expire": frozenset({SENT}),
    "revise": frozenset({SUBMITTED, APPROVED, REJECTED, SENT, DECLINED, EXPIRED}),
    "void": OPEN,
}


class ActionNotAllowed(Conflict):
    title = "Action not allowed"


def allowed(status):
    """The actions a quote in `status` allows, in a stable order."""
    return [action for action, sources in ACTIONS.items() if status in sources]


def check(status, action):
    """Raise ActionNotAllowed (naming the allowed actions) unless `action` may be taken."""
    if status not in ACTIONS[action]:
        actions = allowed(status)
        raise ActionNotAllowed(
            f"A {status} quote cannot be {_past(action)}; allowed: "
            f"{', '.join(actions) if actions else 'nothing (it is final)'}.",
            status=status, action=action, allowed=actions)


def _past(action):
    return {"submit": "submitted", "approve": "approved", "reject": "rejected",
            "send": "sent", "accept": "accepted", "decline": "declined",
            "expire": "expired", "revise": "revised", "void": "voided",
            "edit": "edited"}[action]
