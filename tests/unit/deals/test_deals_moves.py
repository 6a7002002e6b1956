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


SIGNED = {"contract_id": "c0", "signed_at": T0}


def make_deal(stage="discovery", accepted_quote=None, contract_signed=SIGNED, **fields):
    data = {"name": "Acme", "amount": Decimal("1000.00"), "currency": "EUR",
            "owner_id": "u1", "checklist": ["discovery_call_held"],
            "needs_summary": "needs 3 seats", **fields}
    deal, events = D.new_deal(PIPELINE, {**data, "stage": stage}, "d1", T0)
    return {**deal, "accepted_quote": accepted_quote, "contract_signed": contract_signed}


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


QUOTE = {"quote_id": "q1", "version": 1, "total": Decimal("1000.00"), "currency": "EUR",
         "accepted_at": T0}


def test_win_emits_stage_changed_then_won_and_bumps_version_by_two():
    deal = make_deal("quote_negotiation", accepted_quote=QUOTE)
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
        D.win(PIPELINE, make_deal(amount=None, currency=None, accepted_quote=QUOTE), T0)
    assert exc.value.extra["missing_fields"] == ["amount", "currency"]


def test_win_from_discovery_meets_the_gates_of_every_stage_it_skips():
    """Regression: /won closed a discovery deal whose move to contract_payment was 409."""
    deal = make_deal("discovery", checklist=[], needs_summary=None)
    with pytest.raises(Conflict) as moving:
        D.move(PIPELINE, deal, "contract_payment", T0)
    with pytest.raises(Conflict) as winning:
        D.win(PIPELINE, deal, T0)
    assert winning.value.extra == {**moving.value.extra, "stage": "won"}
    ready = make_deal("discovery", accepted_quote=QUOTE)
    assert D.win(PIPELINE, ready, T0).set["status"] == "won"


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_lost_requires_a_reason(reason):
    with pytest.raises(Invalid):
        D.lose(PIPELINE, make_deal(), reason, T0)


def test_lost_carries_the_reason_key():
    deal = make_deal("proposal")
    change = D.lose(PIPELINE, deal, "no_budget", T0, reason_text="cut in Q3")
    assert [e for e, _ in change.events] == ["deal.stage_changed", "deal.lost"]
    lost = catalog_valid(*change.events[1])
    assert (lost["reason"], lost["reason_text"]) == ("no_budget", "cut in Q3")
    after = apply(deal, change)
    assert (after["status"], after["lost_reason"], after["probability"]) == \
        ("lost", "no_budget", 0)
    assert after["history"][-1]["reason"] == "no_budget"


@pytest.mark.parametrize("reason,text,expected", [
    ("budget cut", None, ("other", "budget cut")),
    ("other", "budget cut", ("other", "budget cut")),
    ("price", None, ("price", None)),
])
def test_free_words_are_other_with_their_text(reason, text, expected):
    change = D.lose(PIPELINE, make_deal("proposal"), reason, T0, reason_text=text)
    lost = catalog_valid(*change.events[1])
    assert (lost["reason"], lost["reason_text"]) == expected


def test_other_needs_its_text():
    with pytest.raises(Invalid) as err:
        D.lose(PIPELINE, make_deal("proposal"), "other", T0)
    assert "reason_text" in err.value.extra["errors"]


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
    ({"amount": Decimal("10.005")}, Invalid),  # more places than EUR has, currency kept
])
def test_update_refusals(patch, error):
    with pytest.raises(error):
        D.update(PIPELINE, make_deal(), patch, T0)


@pytest.mark.parametrize(("before", "patch", "amount"), [
    ("1000.00", {"currency": "JPY"}, "1000"),         # whole amount: its units follow
    ("1000", {"currency": "EUR"}, "1000.00"),
    ("1000.00", {"amount": Decimal("12.5")}, "12.50"),  # amount alone, currency kept
])
def test_an_amount_takes_exactly_its_currencys_minor_units(before, patch, amount):
    deal = make_deal(amount=Decimal(before), currency="JPY" if "." not in before else "EUR")
    change = D.update(PIPELINE, deal, patch, T0)
    assert str(change.set["amount"]) == amount


def test_a_currency_the_amount_does_not_fit_is_refused():
    with pytest.raises(Invalid) as raised:
        D.update(PIPELINE, make_deal(amount=Decimal("1000.50")), {"currency": "JPY"}, T0)
    assert raised.value.extra["errors"] == {"amount": ["JPY amounts have no decimal places."]}


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
    assert after["history"][-1]["changes"] == {"amount": {"from": "1000.00", "to": "950.00"}}


def test_a_closed_deal_takes_no_accepted_quote():
    deal = make_deal()
    lost = apply(deal, D.lose(PIPELINE, deal, "price", T0))
    quote = {"quote_id": "q1", "deal_id": "d1", "version": 2, "total": Decimal("1.00"),
             "currency": "EUR", "accepted_at": T0}
    with pytest.raises(Conflict) as exc:
        D.accept_quote(PIPELINE, lost, quote, T0)
    assert "reopen" in exc.value.detail


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
        assert after["stall_due_at"] is None  # out of the stall check's range: not due again


def test_a_move_clears_the_stall_so_it_can_stall_again():
    deal = make_deal()
    stalled = apply(deal, D.stall(PIPELINE, deal, T0 + dt.timedelta(days=15)))
    moved_at = T0 + dt.timedelta(days=16)
    moved = apply(stalled, D.move(PIPELINE, stalled, "needs_confirmed", moved_at))
    assert moved["stalled_at"] is None
    assert D.stall(PIPELINE, moved, moved_at + dt.timedelta(days=14)) is not None


def test_closed_deals_and_stages_without_stall_days_never_stall():
    deal = make_deal(accepted_quote=QUOTE)
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


@pytest.mark.parametrize("close", [
    lambda deal: D.win(PIPELINE, deal, T0),
    lambda deal: D.lose(PIPELINE, deal, "price", T0),
])
@pytest.mark.parametrize("patch", [
    {"amount": Decimal("1.00")}, {"currency": "USD"}, {"owner_id": "u9"}, {"name": "x"},
    {"probability": 5}, {"custom": {"seats": 1}}, {"checklist": {"discovery_call_held": False}},
])
def test_closed_deals_are_edited_only_after_reopen(close, patch):
    """Regression: a won deal's amount could be PATCHed from 128000.00 to 1.00."""
    deal = make_deal(accepted_quote=QUOTE)
    closed = apply(deal, close(deal))
    with pytest.raises(Conflict) as exc:
        D.update(PIPELINE, closed, patch, T0)
    assert "reopen" in exc.value.detail and exc.value.extra["deal_status"] == closed["status"]


def test_edits_of_amount_currency_and_owner_are_in_the_history_with_their_actor():
    deal = make_deal()
    later = T0 + dt.timedelta(hours=2)
    change = D.update(PIPELINE, deal, {"amount": Decimal("1200.50"), "currency": "USD",
                                       "owner_id": "u2", "name": "Acme 2"}, later, actor="u7")
    after = apply(deal, change)
    assert after["history"][-1] == {"at": later, "by": "u7", "changes": {
        "amount": {"from": "1000.00", "to": "1200.50"}, "currency": {"from": "EUR", "to": "USD"},
        "owner_id": {"from": "u1", "to": "u2"}}}
    # a change of no audited field adds no history entry
    renamed = apply(after, D.update(PIPELINE, after, {"name": "Acme 3"}, later, actor="u7"))
    assert renamed["history"] == after["history"]


def test_a_change_returns_its_new_history_entries_not_the_whole_history():
    """The deal's history lives in buckets (kit.buckets): a change carries only what it
    adds, so its write does not grow with the deal's past."""
    deal = make_deal()
    for n in range(30):
        deal = apply(deal, D.update(PIPELINE, deal, {"amount": Decimal(n + 1)}, T0, actor="u"))
    change = D.move(PIPELINE, deal, "needs_confirmed", T0, actor="u")
    assert "history" not in change.set
    assert [(e["from"], e["to"]) for e in change.history] == [("discovery", "needs_confirmed")]


def _lead(amount="5000.00", currency="EUR"):
    return {"lead_id": "l1", "name": "Ann", "company": "Acme", "source": "web_form",
            "amount": Decimal(amount) if amount else None, "currency": currency}


def test_conversion_applies_its_amount_to_an_open_deal_without_one():
    deal = make_deal(amount=None, currency=None, lead_id="l1")
    assert deal["origin"] == "direct"
    change = D.adopt_conversion(PIPELINE, deal, _lead(), T0, actor="u3")
    [(etype, data)] = change.events
    loaded = catalog_valid(etype, data, 2)
    assert loaded["changed"] == ["origin", "amount", "currency"]
    assert (loaded["origin"], loaded["amount"]) == ("lead", Decimal("5000.00"))
    after = apply(deal, change)
    assert (after["amount"], after["currency"], after["origin"]) == \
        (Decimal("5000.00"), "EUR", "lead")
    assert after["history"][-1]["changes"]["amount"] == {"from": None, "to": "5000.00"}
    assert after["history"][-1]["by"] == "u3"
    assert D.adopt_conversion(PIPELINE, after, _lead(), T0) is None  # redelivery: nothing


@pytest.mark.parametrize("closed", [False, True])
def test_conversion_never_overwrites_nor_silently_drops_an_amount(closed):
    deal = make_deal(lead_id="l1")
    if closed:
        deal = apply(deal, D.lose(PIPELINE, deal, "price", T0))
    after = apply(deal, D.adopt_conversion(PIPELINE, deal, _lead(), T0))
    assert after["amount"] == Decimal("1000.00") and after["origin"] == "lead"
    assert after["history"][-1]["not_applied"] == {"amount": "5000.00", "currency": "EUR"}
    assert after["status"] == deal["status"]


def test_deals_from_a_conversion_have_the_lead_origin():
    deal, [(etype, data)] = D.new_deal(PIPELINE, D.deal_from_lead(_lead()), "d1", T0)
    assert deal["origin"] == "lead" and catalog_valid(etype, data)["origin"] == "lead"


def test_an_accepted_quote_is_in_the_history_even_when_the_amount_stays():
    """Regression: a quote accepted at the deal's own amount left no history entry."""
    deal = make_deal("quote_negotiation")
    quote = {"quote_id": "q7", "deal_id": "d1", "version": 3, "total": Decimal("1000.00"),
             "currency": "EUR", "accepted_at": T0}
    after = apply(deal, D.accept_quote(PIPELINE, deal, quote, T0))
    entry = after["history"][-1]
    assert (entry["event"], entry["quote_id"], entry["quote_version"]) == \
        ("quote.accepted", "q7", 3)


def _signed(contract_id="c1"):
    return {"contract_id": contract_id, "quote_id": "q1", "deal_id": "d1",
            "amount": Decimal("950.00"), "currency": "EUR", "signed_at": T0,
            "pdf_sha256": "0" * 64}


def test_won_needs_a_signed_contract_on_the_default_pipeline():
    quote = {"quote_id": "q1", "deal_id": "d1", "version": 1, "total": Decimal("950.00"),
             "currency": "EUR", "accepted_at": T0}
    deal = make_deal("quote_negotiation", contract_signed=None)
    deal = apply(deal, D.accept_quote(PIPELINE, deal, quote, T0))
    with pytest.raises(Conflict) as refused:
        D.win(PIPELINE, deal, T0)
    assert refused.value.extra["missing_fields"] == ["contract_signed"]
    change = D.sign_contract(PIPELINE, deal, _signed(), T0)
    assert catalog_valid(*change.events[0])["changed"] == ["contract_signed"]
    deal = apply(deal, change)
    assert deal["contract_signed"] == {"contract_id": "c1", "signed_at": T0}
    assert deal["history"][-1]["event"] == "contract.signed"
    assert D.sign_contract(PIPELINE, deal, _signed(), T0) is None  # again: nothing
    assert D.win(PIPELINE, deal, T0).set["status"] == "won"


def test_a_first_payment_is_recorded_once_and_a_closed_deal_ignores_both():
    deal = make_deal("quote_negotiation", accepted_quote={"quote_id": "q1"},
                     contract_signed=None)
    payment = {"contract_id": "c1", "quote_id": "q1", "deal_id": "d1",
               "amount": Decimal("950.00"), "currency": "EUR", "payment_id": "p1",
               "paid": Decimal("285.00"), "paid_total": Decimal("285.00"),
               "method": "bank_transfer", "received_at": T0, "first": True}
    deal = apply(deal, D.record_payment(PIPELINE, deal, payment, T0))
    assert deal["first_payment"] == {"payment_id": "p1", "amount": Decimal("285.00"),
                                     "currency": "EUR", "received_at": T0}
    later = {**payment, "payment_id": "p2", "first": False}
    assert D.record_payment(PIPELINE, deal, later, T0) is None
    lost = apply(deal, D.lose(PIPELINE, deal, "price", T0))
    assert D.sign_contract(PIPELINE, lost, _signed(), T0) is None
