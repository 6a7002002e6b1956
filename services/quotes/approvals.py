"""Approval rules, from config: which tiers a quote needs, and who may approve which.

A rule (a tier) names the roles that may approve it and one condition: `discount_over`
(the quote's whole discount as a percent of its subtotal is over it) or `total_over` (per
currency; a currency without a threshold never needs that tier). Tiers stack: a 30 %
discount over the finance threshold needs a manager, a director and finance, each a
separate approval by a separate person (four eyes per tier). Nobody approves or rejects
their own quote (the one who created it or owns it). A quote that needs no tier is
approved on submit.
"""
from decimal import Decimal

from kit.errors import Forbidden, Unauthorized


def _number(value):
    return Decimal(str(value))


def required(rules, totals, currency):
    """The tiers this quote needs, in the rules' order: [{key, roles, reason}]."""
    tiers = []
    for rule in rules:
        reason = None
        if rule.get("discount_over") is not None:
            limit = _number(rule["discount_over"])
            if totals["discount_percent"] > limit:
                reason = f"discount {totals['discount_percent']} % is over {limit} %"
        elif rule.get("total_over") is not None:
            limit = (rule["total_over"] or {}).get(currency)
            if limit is not None and totals["total"] > _number(limit):
                reason = f"total {totals['total']} {currency} is over {_number(limit)}"
        if reason:
            tiers.append({"key": rule["key"], "roles": list(rule["roles"]), "reason": reason})
    return tiers


def pending(quote):
    done = {a["tier"] for a in quote.get("approvals") or ()}
    return [t for t in quote.get("approvals_required") or () if t["key"] not in done]


def _not_own(quote, who, verb):
    if who is None:
        raise Unauthorized(f"To {verb} a quote needs a token: who does it is recorded.")
    if who["sub"] in (quote.get("created_by"), quote.get("owner_id")):
        raise Forbidden(f"Nobody may {verb} their own quote.", reason="own_quote")


def approver_tier(quote, who, tier=None):
    """The pending tier `who` approves now (the first they hold a role for, or `tier`).

    Raises Unauthorized (anonymous), Forbidden (own quote, approved another tier already,
    no role for a pending tier)."""
    _not_own(quote, who, "approve")
    if any(a["by"] == who["sub"] for a in quote.get("approvals") or ()):
        raise Forbidden("You approved this quote already; its other tiers need other people.",
                        reason="approved_already")
    open_tiers = pending(quote)
    fitting = [t for t in open_tiers if set(t["roles"]) & set(who["roles"])
               and (tier is None or t["key"] == tier)]
    if not fitting:
        roles = sorted({r for t in open_tiers for r in t["roles"]})
        raise Forbidden(f"Approving this quote now needs one of the roles: {', '.join(roles)}.",
                        reason="role", pending=[t["key"] for t in open_tiers])
    return fitting[0]


def may_reject(quote, who):
    """Anyone who could approve a pending tier may reject instead."""
    _not_own(quote, who, "reject")
    roles = {r for t in pending(quote) for r in t["roles"]}
    if not roles & set(who["roles"]):
        raise Forbidden(f"Rejecting this quote needs one of the roles: "
                        f"{', '.join(sorted(roles))}.", reason="role")
