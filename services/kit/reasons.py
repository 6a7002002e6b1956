"""Reasons as a picklist with "other + text", pure: a lost deal's (per pipeline) and a
disqualified lead's (per deployment). Events and metrics carry the key, so a dashboard
counts reasons by key with a bounded set of labels; "other" carries the words people
typed in `reason_text`.

A reason that is no key of the picklist is taken as "other" with its words as the text:
clients written before the picklist keep working, and what they send lands in "other"
as it did, never refused.
"""
from kit.errors import Invalid

OTHER = "other"


def keys(picklist):
    return [r["key"] for r in picklist]


def resolve(picklist, reason, text=None):
    """(key, text) for what the caller sent: a key of the picklist (text optional), "other"
    (text required), or free words (-> other, with them as text)."""
    reason = (reason or "").strip()
    text = (text or "").strip() or None
    if not reason:
        raise Invalid("A reason is required.", errors={"reason": ["Must not be blank."]},
                      allowed=keys(picklist))
    if reason == OTHER or reason not in keys(picklist):
        if reason != OTHER:
            text = reason if text is None else f"{reason}: {text}"
        if text is None:
            raise Invalid("Say why in reason_text when the reason is other.",
                          errors={"reason_text": ["Required when the reason is other."]})
        return OTHER, text
    return reason, text


def with_other(picklist):
    """The picklist with "other" last (added when it is missing)."""
    listed = [r for r in picklist if r["key"] != OTHER]
    other = next((r for r in picklist if r["key"] == OTHER),
                 {"key": OTHER, "labels": {"en": "Other", "zh-CN": "其他"}})
    return [*listed, other]
