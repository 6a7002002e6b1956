"""Support KPIs from ticket facts: open now by priority (each ticket once, by its latest
status), warnings, SLA attainment and first-response time."""
import datetime as dt
from pathlib import Path

import pytest

from kit.config import setting
from kit.events import new_event, parse_event
from metrics import domain
from metrics.support_kpis import status_now
from tests.support.configs import shipped_config

CONFIG = Path(__file__).resolve().parents[3] / "services" / "metrics" / "config.yml"
RULES = domain.Rules.from_config(setting(shipped_config(CONFIG), "KPIS"))
T0 = dt.datetime(2026, 3, 2, 1, tzinfo=dt.UTC)
BASE = {"ticket_id": "K", "priority": "urgent", "category": "billing"}


def fact(seq, etype, **data):
    envelope, loaded = parse_event(new_event(etype, "K", {**BASE, **data}, seq))
    envelope["data"] = loaded
    return domain.fact_from_event(envelope)[2]


def opened(seq=1):
    return fact(seq, "ticket.opened", channel="email", subject="x", opened_at=T0)


def moved(seq, frm, to):
    return fact(seq, "ticket.status_changed", from_status=frm, to_status=to, changed_at=T0)


def totals(*facts):
    out = domain.contribution("tickets", {"_id": "K", "facts": list(facts), "rev": 1}, RULES)
    return dict(zip(out[::2], out[1::2], strict=True))


@pytest.mark.parametrize("facts, status", [
    ([opened()], "new"),
    ([opened(), moved(2, "new", "open")], "open"),
    ([opened(), moved(2, "new", "open"), moved(3, "open", "pending")], "pending"),
    ([opened(), moved(3, "open", "resolved"), moved(2, "new", "open")], "resolved"),
    ([opened(), fact(2, "ticket.reopened", reason=None)], "open"),
    ([], None),
])
def test_status_now_is_the_latest_fact_that_says(facts, status):
    assert status_now(sorted(facts, key=lambda f: f["seq"])) == status


def test_open_tickets_warnings_outcomes_and_first_response():
    k = domain.key
    got = totals(opened(), moved(2, "new", "pending"),
                 fact(3, "ticket.sla_warning", kind="resolution", due_at=T0, warned_at=T0),
                 fact(4, "ticket.first_responded", opened_at=T0, responded_at=T0,
                      first_response_seconds=600.0, sla_met=True))
    assert got[k("tickets_open", "urgent")] == 1
    assert got[k("ticket_sla_warnings", "resolution", "urgent")] == 1
    assert got[k("ticket_sla_outcomes", "first_response", "met")] == 1
    assert got[k("ticket_first_response_seconds:sum", "urgent")] == 600 * domain.MICROS
    done = totals(opened(), moved(2, "new", "resolved"),
                  fact(3, "ticket.resolved", opened_at=T0, resolved_at=T0,
                       resolution_seconds=60.0, sla_met=False))
    assert k("tickets_open", "urgent") not in done
    assert done[k("ticket_sla_outcomes", "resolution", "missed")] == 1


def delivery_fact(seq, etype, **data):
    base = {"delivery_id": "V", "deal_id": "D"}
    envelope, loaded = parse_event(new_event(etype, "V", {**base, **data}, seq))
    envelope["data"] = loaded
    return domain.fact_from_event(envelope)[2]


def contribution(*facts):
    doc = {"_id": "V", "facts": list(facts), "rev": len(facts)}
    out = domain.contribution("deliveries", doc, RULES)
    return dict(zip(out[::2], out[1::2], strict=True))


def test_delivery_projects_open_steps_and_won_to_accepted():
    k = domain.key
    won = T0 - dt.timedelta(days=10)
    opened = delivery_fact(1, "delivery.opened", template="default", steps=["a", "b"],
                           won_at=won, opened_at=won)
    late = delivery_fact(2, "delivery.step_completed", step="a", completed_at=T0, overdue=True)
    got = contribution(opened, late)
    assert got[k("deliveries_open")] == 1 and got[k("delivery_steps_completed", "late")] == 1
    accepted = delivery_fact(3, "delivery.accepted", won_at=won, accepted_at=T0)
    got = contribution(opened, late, accepted)
    assert k("deliveries_open") not in got
    assert got[k("delivery_won_to_accepted_seconds:sum")] == 10 * 86400 * domain.MICROS
