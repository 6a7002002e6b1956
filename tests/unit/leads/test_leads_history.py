"""A historical import's rules: the times a status needs, in funnel order, in the past; the
state machine's moves at those times, their events carrying them."""
import datetime as dt

import pytest

from leads import domain
from leads.assignment import Assignment
from leads.extensions import rules_from_config
from tests.conftest import ROOT
from tests.support.configs import shipped_config

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
RULES = rules_from_config(shipped_config(ROOT / "services" / "leads" / "config.yml"))


def hours(n):
    return T0 + dt.timedelta(hours=n)


CONVERTED = {"created_at": T0, "status": "converted", "contacted_at": hours(1),
             "qualified_at": hours(50), "converted_at": hours(200)}


@pytest.mark.parametrize("history", [
    {"created_at": T0},
    {"created_at": T0, "status": "contacted", "contacted_at": hours(1)},
    {"created_at": T0, "status": "disqualified", "disqualified_at": hours(3), "reason": "spam"},
    {"created_at": T0, "status": "disqualified", "contacted_at": hours(1),
     "qualified_at": hours(2), "disqualified_at": hours(3), "reason": "no_budget"},
    CONVERTED,
    {**CONVERTED, "amount": "10.00", "currency": "EUR", "pipeline_id": "seed"},
])
def test_consistent_histories_pass(history):
    assert domain.history_errors(history, NOW) == {}


@pytest.mark.parametrize("history,field", [
    ({"created_at": T0, "status": "contacted"}, "contacted_at"),
    ({**CONVERTED, "qualified_at": None}, "qualified_at"),
    ({"created_at": T0, "status": "new", "contacted_at": hours(1)}, "contacted_at"),
    ({"created_at": T0, "status": "disqualified", "disqualified_at": hours(1)}, "reason"),
    ({"created_at": T0, "status": "disqualified", "disqualified_at": hours(3),
      "reason": "x", "qualified_at": hours(2)}, "contacted_at"),
    ({**CONVERTED, "reason": "x"}, "reason"),
    ({"created_at": T0, "status": "qualified", "contacted_at": hours(1),
      "qualified_at": hours(2), "amount": "1.00"}, "amount"),
    ({**CONVERTED, "contacted_at": T0 - dt.timedelta(minutes=1)}, "contacted_at"),
    ({**CONVERTED, "converted_at": hours(10)}, "converted_at"),
    ({**CONVERTED, "converted_at": NOW + dt.timedelta(seconds=1)}, "converted_at"),
])
def test_inconsistent_histories_name_the_field(history, field):
    assert field in domain.history_errors(history, NOW)


def test_history_replays_the_moves_at_their_times_and_records_the_import():
    lead = domain.new_lead({"name": "李娜", "source": "event", "country": "CN"}, "lead-1",
                           T0, RULES, "ada")
    lead.update(domain.assignment_fields(Assignment("rep-gc-1", "greater_china", None, "x")))
    fields, events = domain.historical(
        lead, {**CONVERTED, "amount": "10.00", "currency": "EUR", "pipeline_id": "seed"},
        "key-1", NOW, RULES, "ada")
    assert [t for t, _ in events] == ["lead.contacted", "lead.qualified", "lead.converted"]
    data = {t: d for t, d in events}
    assert data["lead.contacted"]["contacted_at"] == hours(1)
    assert data["lead.contacted"]["first_response_seconds"] == 3600
    assert data["lead.qualified"]["qualified_at"] == hours(50)
    assert data["lead.converted"]["converted_at"] == hours(200)
    assert data["lead.converted"]["pipeline_id"] == "seed"
    assert [d["status"] for d in data.values()] == ["contacted", "qualified", "converted"]
    assert fields["status"] == "converted" and fields["response_due_at"] is None
    assert fields["imported"] == {"by": "ada", "at": NOW, "historical": True,
                                  "idempotency_key": "key-1"}
    assert [(a["type"], a["at"], a["recorded_at"]) for a in fields["activities"]] == \
        [("import", T0, NOW)]


@pytest.mark.parametrize("historical", [False, True])
def test_only_a_historical_imports_assignment_says_it_was_made_back_then(historical):
    lead = domain.new_lead({"name": "李娜", "source": "event", "country": "CN"}, "lead-1",
                           T0, RULES, "ada")
    chosen = Assignment("rep-gc-1", "greater_china", None, "x")
    lead.update(domain.assignment_fields(chosen))
    events = dict(domain.created_events(lead, chosen, historical=historical))
    assert events["lead.assigned"]["owner_id"] == "rep-gc-1"
    assert events["lead.assigned"].get("historical") == (True if historical else None)
    assert "historical" not in events["lead.created"]
