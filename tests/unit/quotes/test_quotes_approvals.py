"""Approval rules, table-driven: the tiers a quote needs (stacking), who may approve or
reject, that nobody approves their own quote, and that none needed approves on submit."""
import datetime as dt
from decimal import Decimal

import pytest

from kit.errors import Forbidden, Unauthorized
from quotes import approvals, domain
from quotes import lifecycle as L

D = Decimal
NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
RULES = [
    {"key": "manager", "roles": ["manager"], "discount_over": 10},
    {"key": "director", "roles": ["director"], "discount_over": "25"},
    {"key": "finance", "roles": ["finance"],
     "total_over": {"CNY": "1000000.00", "USD": "150000.00"}},
]


def totals(discount_percent, total):
    return {"discount_percent": D(discount_percent), "total": D(total)}


@pytest.mark.parametrize(("discount", "total", "currency", "tiers"), [
    ("0.00", "100.00", "CNY", []),
    ("10.00", "100.00", "CNY", []),  # "over 10 %": 10 % itself needs nobody
    ("10.01", "100.00", "CNY", ["manager"]),
    ("25.00", "100.00", "CNY", ["manager"]),
    ("25.01", "100.00", "CNY", ["manager", "director"]),  # tiers stack
    ("0.00", "1000000.00", "CNY", []),
    ("0.00", "1000000.01", "CNY", ["finance"]),
    ("30.00", "1000000.01", "CNY", ["manager", "director", "finance"]),
    ("0.00", "150000.01", "USD", ["finance"]),
    ("0.00", "99999999.00", "EUR", []),  # no threshold for EUR: never finance
])
def test_required_tiers(discount, total, currency, tiers):
    needed = approvals.required(RULES, totals(discount, total), currency)
    assert [t["key"] for t in needed] == tiers
    assert all(t["reason"] for t in needed)


def quote(status=L.SUBMITTED, tiers=("manager", "director"), done=()):
    rules = {r["key"]: r for r in RULES}
    return {"_id": "q1", "deal_id": "d1", "quote_version": 1, "status": status,
            "created_by": "rep-1", "owner_id": "rep-2", "currency": "CNY",
            "totals": {"total": D("100.00")}, "submitted_at": NOW,
            "approvals_required": [{"key": k, "roles": rules[k]["roles"], "reason": "x"}
                                   for k in tiers],
            "approvals": [{"tier": t, "by": by, "roles": [], "at": NOW, "reason": None}
                          for t, by in done]}


def who(sub, *roles):
    return {"sub": sub, "roles": list(roles)}


@pytest.mark.parametrize(("caller", "done", "error", "reason"), [
    (None, (), Unauthorized, None),
    (who("rep-1", "manager"), (), Forbidden, "own_quote"),  # created it
    (who("rep-2", "manager"), (), Forbidden, "own_quote"),  # owns it
    (who("m-1", "rep"), (), Forbidden, "role"),
    (who("m-1", "manager", "director"), (("manager", "m-1"),), Forbidden,
     "approved_already"),
    (who("f-1", "finance"), (), Forbidden, "role"),
])
def test_who_may_not_approve(caller, done, error, reason):
    with pytest.raises(error) as caught:
        domain.approve(quote(done=done), caller, NOW)
    if reason:
        assert caught.value.extra["reason"] == reason


def test_stacked_tiers_need_one_approval_each_and_the_last_approves():
    first = domain.approve(quote(), who("m-1", "manager"), NOW, reason="strategic account")
    assert first.set["approvals"][0] == {"tier": "manager", "by": "m-1", "roles": ["manager"],
                                         "at": NOW, "reason": "strategic account"}
    assert "status" not in first.set and first.events == []
    later = NOW + dt.timedelta(hours=2)
    second = domain.approve(quote(done=[("manager", "m-1")]), who("d-1", "director"), later)
    assert second.set["status"] == L.APPROVED and second.set["approved_at"] == later
    [(etype, data)] = second.events
    assert etype == "quote.approved" and data["approver_id"] == "d-1"
    assert (data["submitted_at"], data["approved_at"]) == (NOW, later)


def test_an_approver_may_name_the_tier():
    change = domain.approve(quote(), who("x", "manager", "director"), NOW, tier="director")
    assert change.set["approvals"][0]["tier"] == "director"


@pytest.mark.parametrize(("caller", "error"), [
    (None, Unauthorized),
    (who("rep-1", "manager"), Forbidden),
    (who("r", "rep"), Forbidden),
])
def test_who_may_not_reject(caller, error):
    with pytest.raises(error):
        domain.reject(quote(), caller, "too cheap", NOW)


def test_a_reject_records_who_when_why():
    change = domain.reject(quote(), who("d-1", "director"), "margin too thin", NOW)
    assert change.set["status"] == L.REJECTED
    assert change.set["rejection"] == {"by": "d-1", "at": NOW, "reason": "margin too thin"}
    assert change.events[0][0] == "quote.rejected"


def draft(discount_percent="0.00", total="100.00"):
    return {**quote(status=L.DRAFT, tiers=()), "valid_until": NOW + dt.timedelta(days=30),
            "totals": {"discount_percent": D(discount_percent), "total": D(total)}}


def test_a_quote_that_needs_no_approval_is_approved_on_submit():
    change = domain.submit(draft(), RULES, NOW, actor="rep-1")
    assert change.set["status"] == L.APPROVED and change.set["approvals_required"] == []
    assert [e[0] for e in change.events] == ["quote.submitted", "quote.approved"]
    assert change.events[0][1]["requires_approval"] is False


def test_a_quote_that_needs_approval_waits_submitted():
    change = domain.submit(draft("12.00"), RULES, NOW, actor="rep-1")
    assert change.set["status"] == L.SUBMITTED
    assert [t["key"] for t in change.set["approvals_required"]] == ["manager"]
    assert [e[0] for e in change.events] == ["quote.submitted"]
