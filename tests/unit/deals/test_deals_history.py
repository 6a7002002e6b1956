"""Deals' recorded past: steps through the same rules and gates at their own times, forward
in time, never in the future; one change with gap-free events, its entries marked."""
import datetime as dt

import pytest

from deals import domain
from deals import pipelines as P
from kit.errors import Invalid

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def day(n):
    return T0 + dt.timedelta(days=n)


@pytest.fixture
def pipeline():
    return P.default_pipeline()


@pytest.fixture
def deal(pipeline):
    made, _ = domain.new_deal(pipeline, {"name": "Acme", "amount": "100.00",
                                         "currency": "EUR"}, "d-1", T0, actor="ada")
    return made


def test_steps_apply_at_their_times_in_one_change(pipeline, deal):
    change = domain.replay(pipeline, deal, [
        {"at": day(1), "action": "update", "fields": {"checklist": ["discovery_call_held"]}},
        {"at": day(2), "action": "move", "stage": "needs_confirmed"},
        {"at": day(9), "action": "lost", "reason": "price"},
    ], NOW, actor="admin")
    assert [t for t, _ in change.events] == ["deal.updated", "deal.stage_changed",
                                             "deal.stage_changed", "deal.lost"]
    assert change.events[1][1]["changed_at"] == day(2)
    assert change.events[3][1]["lost_at"] == day(9)
    assert change.set["closed_at"] == day(9) and change.set["status"] == "lost"
    added = change.history
    assert [(t["to"], t["at"], t["recorded_at"], t["historical"]) for t in added] == \
        [("needs_confirmed", day(2), NOW, True), ("lost", day(9), NOW, True)]
    assert change.as_deal(deal)["version"] == deal["version"] + 4


def test_gates_still_apply(pipeline, deal):
    with pytest.raises(domain.GateNotMet):
        domain.replay(pipeline, deal, [{"at": day(1), "action": "move",
                                        "stage": "needs_confirmed"}], NOW)


@pytest.mark.parametrize("at", [T0 - dt.timedelta(seconds=1), NOW + dt.timedelta(seconds=1)])
def test_a_step_before_the_last_change_or_in_the_future_is_refused(pipeline, deal, at):
    with pytest.raises(Invalid) as refused:
        domain.replay(pipeline, deal, [{"at": at, "action": "lost", "reason": "x"}], NOW)
    assert "at" in refused.value.extra["errors"]["steps"][0]


def test_steps_go_forward(pipeline, deal):
    with pytest.raises(Invalid):
        domain.replay(pipeline, deal, [
            {"at": day(3), "action": "update", "fields": {"needs_summary": "x"}},
            {"at": day(2), "action": "lost", "reason": "x"}], NOW)


def test_a_conversion_opens_its_deal_at_the_conversion_never_later_than_now():
    assert domain.opened_at({"converted_at": T0}, NOW) == T0
    assert domain.opened_at({"converted_at": NOW + dt.timedelta(hours=1)}, NOW) == NOW


def test_an_item_names_a_deal_or_the_deal_of_a_lead():
    assert domain.history_target("d-1") == "d-1"
    assert domain.history_target("lead:l-1") == domain.deal_id_for_lead("l-1")


@pytest.mark.parametrize("step,field", [
    ({"action": "move"}, "stage"), ({"action": "lost"}, "reason")])
def test_a_move_needs_its_stage_and_a_loss_its_reason(pipeline, deal, step, field):
    with pytest.raises(Invalid) as refused:
        domain.replay(pipeline, deal, [{"at": day(1), **step}], NOW)
    assert field in refused.value.extra["errors"]


def test_lead_erased_drops_the_copied_contact_and_a_person_s_name():
    import datetime as dt

    from deals import domain

    now = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    deal = {"_id": "d", "name": "Ada", "contact": {"name": "Ada", "email": "a@x.org"},
            "pipeline_id": "default", "stage": "discovery", "probability": 10,
            "history": [], "version": 3}
    change = domain.erase_contact(deal, "l-1", now, actor="dpo")
    assert (change.set["name"], change.set["contact"]) == (domain.ERASED_NAME, None)
    assert change.history[-1]["event"] == "lead.erased"
    assert change.events[0][1]["changed"] == ["name", "contact"]
    assert domain.erase_contact({**deal, **change.set}, "l-1", now) is None
    company = {**deal, "name": "Engines Ltd"}
    assert "name" not in domain.erase_contact(company, "l-1", now).set
