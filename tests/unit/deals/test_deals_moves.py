"""Deal moves, closes, edits, accepted quotes and stalls: the changes and the events."""
import datetime as dt
from decimal import Decimal

import pytest

from deals import domain as D
from deals import pipelines as P
from kit.errors import Conflict, Invalid
from kit.events import new_event, parse_event
from kit.http import problem_from_exception

PIPELINE = P.default_pipeline()
T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)
DAY = 86400


def make_deal(stage="discovery", **fields):
    data = {"name": "Acme", "amount": Decimal("1000.00"), "currency": "EUR",
            "owner_id": "u1", "checklist": ["discovery_call_held"],
            "needs_summary": "needs 3 seats", **fields}
    deal, events = D.new_deal(PIPELINE, {**data, "stage": stage}, "d1", T0)
    return deal


def catalog_valid(etype, data, sequence=1):
    """The event data as a consumer would load it (proves it meets the catalog)."""
    return parse_event(new_event(etype, "d1", data, sequence))[1]


def apply(deal, change):
    return change.as_deal(deal)


def test_new_deal_starts_in_first_stage_at_version_one_with_deal_created():
    deal, events = D.new_deal(PIPELINE, {"name": "Acme"}, "d1", T0)
    assert (deal["stage"], deal["status"], deal["version"]) == ("discovery", "open", 1)
    assert deal["probability"] == 10
    assert deal["history"] == [{"from": None, "to": "discovery", "at": T0, "by": None}]
    assert deal["stall_due_at"] == T0 + dt.timedelta(days=14)
    [(etype, data)] = events
    assert etype == "deal.created"
    assert catalog_valid(etype, data)["stage"] == "discovery"


@pytest.mark.parametrize(("data", "error", "detail"), [
    ({"name": "x", "stage": "proposal"}, Conflict, "missing fields: needs_summary; "
     "checklist: discovery_call_held"),
    ({"name": "x", "stage": "won"}, Invalid, "A deal starts in an open stage."),
    ({"name": "x", "stage": "nope"}, Invalid, "No stage 'nope' in pipeline 'default'."),
    ({"name": "x", "amount": Decimal("5")}, Invalid, "An amount needs a currency."),
    ({"name": "x", "checklist": ["made_up"]}, Invalid,
     "Unknown checklist items for this pipeline."),
])
def test_new_deal_refusals(data, error, detail):
    with pytest.raises(error) as exc:
        D.new_deal(PIPELINE, data, "d1", T0)
    assert detail in exc.value.detail


def test_move_emits_stage_changed_with_from_to_probability_and_amount():
    deal = make_deal()
    later = T0 + dt.timedelta(hours=1)
    change = D.move(PIPELINE, deal, "proposal", later, actor="u2")
    [(etype, data)] = change.events
    loaded = catalog_valid(etype, data, 2)
    assert (loaded["from_stage"], loaded["to_stage"]) == ("discovery", "proposal")
    assert loaded["probability"] == 50 and loaded["amount"] == Decimal("1000.00")
    assert new_event(etype, "d1", data, 2)["data"]["from"] == "discovery"
    after = apply(deal, change)
    assert (after["stage"], after["probability"], after["version"]) == ("proposal", 50, 2)
    assert after["history"][-1] == {"from": "discovery", "to": "proposal", "at": later,
                                    "by": "u2"}
    assert after["last_activity_at"] == later and after["stalled_at"] is None


def test_move_blocked_by_gate_lists_exactly_what_is_missing():
    deal = make_deal(checklist=[], needs_summary=None)
    with pytest.raises(Conflict) as exc:
        D.move(PIPELINE, deal, "quote_negotiation", T0)
    assert problem_from_exception(exc.value).status_code == 409
    assert exc.value.extra == {"stage": "quote_negotiation", "missing_fields": ["needs_summary"],
                               "missing_checklist": ["discovery_call_held"]}


@pytest.mark.parametrize(("to_key", "error"), [
    ("discovery", Conflict),      # already there
    ("won", Invalid),             # closing has its own route
    ("lost", Invalid),
    ("unknown", Invalid),
])
def test_move_refusals(to_key, error):
    with pytest.raises(error):
        D.move(PIPELINE, make_deal(), to_key, T0)


def test_win_emits_stage_changed_then_won_and_bumps_version_by_two():
    deal = make_deal("quote_negotiation")
    change = D.win(PIPELINE, deal, T0)
    assert [e for e, _ in change.events] == ["deal.stage_changed", "deal.won"]
    won = catalog_valid(*change.events[1], 3)
    assert won["from_stage"] == "quote_negotiation" and won["amount"] == Decimal("1000.00")
    after = apply(deal, change)
    assert (after["status"], after["stage"], after["probability"], after["version"]) == \
        ("won", "won", 100, 3)
    assert after["stall_due_at"] is None and after["closed_at"] == T0


def test_win_needs_an_amount():
    with pytest.raises(Conflict) as exc:
        D.win(PIPELINE, make_deal(amount=None, currency=None), T0)
    assert exc.value.extra["missing_fields"] == ["amount", "currency"]


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_lost_requires_a_reason(reason):
    with pytest.raises(Invalid):
        D.lose(PIPELINE, make_deal(), reason, T0)


def test_lost_carries_the_reason():
    deal = make_deal("proposal")
    change = D.lose(PIPELINE, deal, "budget cut", T0)
    assert [e for e, _ in change.events] == ["deal.stage_changed", "deal.lost"]
    assert catalog_valid(*change.events[1])["reason"] == "budget cut"
    after = apply(deal, change)
    assert (after["status"], after["lost_reason"], after["probability"]) == \
        ("lost", "budget cut", 0)
    assert after["history"][-1]["reason"] == "budget cut"


@pytest.mark.parametrize("action", [
    lambda deal: D.move(PIPELINE, deal, "proposal", T0),
    lambda deal: D.win(PIPELINE, deal, T0),
    lambda deal: D.lose(PIPELINE, deal, "again", T0),
])
def test_closed_deals_do_not_move_until_reopened(action):
    deal = make_deal()
    closed = apply(deal, D.lose(PIPELINE, deal, "no budget", T0))
    with pytest.raises(Conflict):
        action(closed)


def test_reopen_returns_to_the_stage_it_was_closed_from():
    deal = make_deal("proposal")
    closed = apply(deal, D.lose(PIPELINE, deal, "no budget", T0))
    change = D.reopen(PIPELINE, closed, T0 + dt.timedelta(days=1))
    after = apply(closed, change)
    assert (after["status"], after["stage"], after["probability"]) == ("open", "proposal", 50)
    assert after["lost_reason"] is None and after["version"] == 4
    loaded = catalog_valid(*change.events[0])
    assert (loaded["from_stage"], loaded["to_stage"]) == ("lost", "proposal")


def test_reopen_into_a_stage_checks_its_gate_and_open_deals_refuse():
    deal = make_deal(needs_summary=None)
    closed = apply(deal, D.lose(PIPELINE, deal, "no budget", T0))
    with pytest.raises(Conflict) as exc:
        D.reopen(PIPELINE, closed, T0, "proposal")
    assert exc.value.extra["missing_fields"] == ["needs_summary"]
    with pytest.raises(Conflict):
        D.reopen(PIPELINE, deal, T0)


@pytest.mark.parametrize(("patch", "changed"), [
    ({"name": "Acme Corp"}, ["name"]),
    ({"amount": Decimal("1200.50"), "currency": "USD"}, ["amount", "currency"]),
    ({"expected_close": dt.date(2025, 6, 30)}, ["expected_close"]),
    ({"probability": 33}, ["probability"]),
    ({"custom": {"seats": 3}}, ["custom"]),
    ({"checklist": {"discovery_call_held": False}}, ["checklist"]),
    ({"name": "Acme", "checklist": {"discovery_call_held": True}}, []),  # nothing new
])
def test_update_lists_what_changed(patch, changed):
    deal = make_deal()
    change = D.update(PIPELINE, deal, patch, T0)
    if not changed:
        assert change is None
        return
    [(etype, data)] = change.events
    assert etype == "deal.updated"
    assert catalog_valid(etype, data)["changed"] == changed


def test_update_custom_fields_merge_and_null_removes():
    deal = make_deal(custom={"seats": 3, "region": "north"})
    after = apply(deal, D.update(PIPELINE, deal, {"custom": {"seats": None, "tier": "gold"}},
                                 T0))
    assert after["custom"] == {"region": "north", "tier": "gold"}


@pytest.mark.parametrize(("patch", "error"), [
    ({"checklist": {"made_up": True}}, Invalid),
    ({"currency": None}, Invalid),           # amount left without a currency
])
def test_update_refusals(patch, error):
    with pytest.raises(error):
        D.update(PIPELINE, make_deal(), patch, T0)


def test_accepted_quote_meets_the_contract_gate_and_sets_the_amount():
    deal = make_deal("quote_negotiation")
    with pytest.raises(Conflict):
        D.move(PIPELINE, deal, "contract_payment", T0)
    quote = {"quote_id": "q1", "deal_id": "d1", "version": 2, "total": Decimal("950.00"),
             "currency": "EUR", "accepted_at": T0}
    change = D.accept_quote(PIPELINE, deal, quote, T0)
    assert catalog_valid(*change.events[0])["changed"] == ["accepted_quote", "amount"]
    after = apply(deal, change)
    assert after["amount"] == Decimal("950.00")
    assert D.move(PIPELINE, after, "contract_payment", T0).set["stage"] == "contract_payment"
    assert D.accept_quote(PIPELINE, after, quote, T0) is None  # same quote again: no change


@pytest.mark.parametrize(("idle", "stalls", "idle_days"), [
    (dt.timedelta(days=13, hours=23), False, None),
    (dt.timedelta(days=14), True, 14),
    (dt.timedelta(days=20, hours=5), True, 20),
])
def test_stall_after_the_stage_idle_days(idle, stalls, idle_days):
    deal = make_deal()
    change = D.stall(PIPELINE, deal, T0 + idle, day_seconds=DAY)
    assert (change is not None) == stalls
    if stalls:
        assert catalog_valid(*change.events[0])["idle_days"] == idle_days
        after = apply(deal, change)
        assert D.stall(PIPELINE, after, T0 + idle * 2, day_seconds=DAY) is None  # once


def test_a_move_clears_the_stall_so_it_can_stall_again():
    deal = make_deal()
    stalled = apply(deal, D.stall(PIPELINE, deal, T0 + dt.timedelta(days=15)))
    moved_at = T0 + dt.timedelta(days=16)
    moved = apply(stalled, D.move(PIPELINE, stalled, "needs_confirmed", moved_at))
    assert moved["stalled_at"] is None
    assert D.stall(PIPELINE, moved, moved_at + dt.timedelta(days=14)) is not None


def test_closed_deals_and_stages_without_stall_days_never_stall():
    deal = make_deal()
    won = apply(deal, D.win(PIPELINE, deal, T0))
    assert D.stall(PIPELINE, won, T0 + dt.timedelta(days=400)) is None


def test_deal_from_lead_uses_one_id_per_lead():
    assert D.deal_id_for_lead("l1") == D.deal_id_for_lead("l1") != D.deal_id_for_lead("l2")
    data = D.deal_from_lead({"lead_id": "l1", "name": "Ann", "company": "Acme",
                             "email": "a@acme.test", "source": "web_form",
                             "amount": Decimal("10"), "currency": "EUR", "owner_id": "u1"})
    assert data["name"] == "Acme" and data["contact"] == {"name": "Ann",
                                                          "email": "a@acme.test"}
    assert data["lead_id"] == "l1" and data["custom"] == {"lead_source": "web_form"}
