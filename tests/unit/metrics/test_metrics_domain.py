"""Pure KPI rules: order and duplicates do not matter, labels stay bounded, the sum of
contributions is exact, the cohort funnel counts what the script says."""
import random
from decimal import Decimal
from pathlib import Path

import pytest
from marshmallow import ValidationError
from prometheus_client import CollectorRegistry, generate_latest

from kit.config import load_config, setting
from kit.events import parse_event
from metrics import domain
from metrics.live import KpiCollector
from metrics.schemas import FunnelQuery
from tests.integration.metrics import metrics_script as script

CONFIG = Path(__file__).resolve().parents[3] / "services" / "metrics" / "config.yml"
RULES = domain.Rules.from_config(setting(load_config(CONFIG), "KPIS"))


def projections(events):
    """{(kind, id): doc} built from the events the way the store does (facts + rev)."""
    docs = {}
    for body in events:
        envelope, data = parse_event(body)
        envelope["data"] = data
        kind, entity_id, fact = domain.fact_from_event(envelope)
        doc = docs.setdefault((kind, entity_id), {"_id": entity_id, "facts": [], "rev": 0})
        doc["facts"].append(fact)
        doc["rev"] += 1
        if kind == "leads" and fact.get("created_at"):
            doc["created_at"] = min(doc.get("created_at", fact["created_at"]),
                                    fact["created_at"])
    return docs


def totals(docs):
    agg = domain.Aggregates()
    for (kind, entity_id), doc in docs.items():
        agg.replace(kind, entity_id, doc["rev"], domain.contribution(kind, doc, RULES))
    return {k: v for k, v in agg.values.items() if v}


@pytest.mark.parametrize("seed", range(5))
def test_arrival_order_does_not_change_any_kpi(seed):
    events = script.build()
    shuffled = list(events)
    random.Random(seed).shuffle(shuffled)
    assert totals(projections(shuffled)) == totals(projections(events))


class _Live:
    def __init__(self, state):
        self.rules, self.state, self.ready = RULES, state, True


def test_the_exposition_of_the_script_has_every_expected_value():
    agg = domain.Aggregates()
    for (kind, entity_id), doc in projections(script.build()).items():
        agg.replace(kind, entity_id, doc["rev"], domain.contribution(kind, doc, RULES))
    registry = CollectorRegistry()
    registry.register(KpiCollector(_Live(agg)))
    text = generate_latest(registry).decode()
    assert script.mismatches(script.samples(text), script.build(), {}) == []


def test_kpis_of_the_script():
    got = totals(projections(script.build()))
    k = domain.key
    assert got[k("funnel_entered", "needs_confirmed")] == 2  # D2 skipped it: counts as passed
    assert got[k("funnel_current", "won")] == 1
    assert got[k("pipeline_amount", "proposal", "EUR")] == Decimal("5000.00")
    assert got[k("forecast_weighted_amount", "EUR", "2024-06")] == Decimal("2500")
    assert got[k("deal_cycle_seconds:sum", "lost")] == 2 * 86400 * domain.MICROS
    assert got[k("leads_created", "other")] == 1


def test_a_newer_revision_replaces_the_old_contribution_and_a_stale_one_is_ignored():
    agg = domain.Aggregates()
    a, b = domain.key("quotes", "created"), domain.key("quotes", "sent")
    assert agg.replace("quotes", "q", 1, (a, 1))
    assert agg.replace("quotes", "q", 3, (a, 1, b, 1))
    assert not agg.replace("quotes", "q", 2, (a, 1))
    assert (agg.values[a], agg.values[b]) == (1, 1)
    assert agg.known_rev("quotes", "q") == 3


@pytest.mark.parametrize("value, label", [
    ("web_form", "web_form"), ("Web Form", "web_form"), ("e-mail", "other"),
    ("Email", "email"), (None, "other"), ("x" * 500, "other"),
])
def test_lead_sources_become_bounded_labels(value, label):
    assert RULES.source_label(value) == label


@pytest.mark.parametrize("stage, label", [
    ("proposal", "proposal"), ("Custom stage 7", "other"), ("won", "other"),
])
def test_deal_stages_outside_the_funnel_become_other(stage, label):
    assert RULES.deal_stage_label(stage) == label


def test_cohort_funnel_counts_and_medians():
    docs = projections(script.build())
    leads = [d for (kind, _), d in docs.items() if kind == "leads"
             and script.T0 <= d["created_at"] < script.T0 + script.D]
    deals = [d for (kind, _), d in docs.items() if kind == "deals"]
    result = domain.cohort_funnel(leads, deals, RULES)
    assert {s["stage"]: s["reached"] for s in result["stages"]} == script.COHORT_REACHED
    for t in result["transitions"]:
        assert (t["median_seconds"], t["samples"]) == script.COHORT_MEDIANS[(t["from"],
                                                                              t["to"])]
    assert result["overall_conversion_rate"] == 0.25


def test_cohort_funnel_of_nobody_has_no_rates():
    result = domain.cohort_funnel([], [], RULES)
    assert result["leads"] == 0 and result["overall_conversion_rate"] is None
    assert {t["conversion_rate"] for t in result["transitions"]} == {None}


@pytest.mark.parametrize("args, field", [
    ({"from": "not a time"}, "from"),
    ({"to": "2024-13-01T00:00:00Z"}, "to"),
    ({"from": "2024-05-02T00:00:00Z", "to": "2024-05-01T00:00:00Z"}, "to"),
    ({"from": "2030-01-01T00:00:00Z"}, "from"),
])
def test_funnel_query_rejects(args, field):
    with pytest.raises(ValidationError) as exc:
        FunnelQuery().load(args)
    assert field in exc.value.messages


def test_funnel_query_defaults_to_the_last_30_days():
    got = FunnelQuery().load({})
    assert got["to"] - got["from_"] == domain.dt.timedelta(days=30)
    assert got["pipeline"] is None


def _deal_facts():
    at = script.T0
    return [
        {"id": "e1", "type": "deal.created", "seq": 1, "time": at, "stage": "discovery",
         "amount": "100", "currency": "EUR", "probability": 10, "created_at": at},
        {"id": "e2", "type": "deal.lost", "seq": 2, "time": at, "from_stage": "discovery",
         "reason": "timing", "created_at": at, "lost_at": at + script.D},
        {"id": "e3", "type": "deal.stage_changed", "seq": 3, "time": at,
         "from_stage": "lost", "to_stage": "proposal", "amount": "300", "currency": "EUR",
         "probability": 50, "changed_at": at + 2 * script.D},
    ]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_a_reopened_deal_is_open_again_and_its_loss_still_counts(order):
    facts = _deal_facts()
    doc = {"_id": "d", "rev": 3, "facts": [facts[i] for i in order]}
    got = dict(zip(*[iter(domain.contribution("deals", doc, RULES))] * 2, strict=True))
    k = domain.key
    assert got[k("deals_lost", "timing")] == 1
    assert got[k("deal_cycle_seconds:sum", "lost")] == 86400 * domain.MICROS
    assert got[k("funnel_current", "proposal")] == 1
    assert got[k("pipeline_amount", "proposal", "EUR")] == Decimal("300")
    assert got[k("forecast_weighted_amount", "EUR", "unscheduled")] == Decimal("150")
