"""Pure KPI rules: order and duplicates do not matter, labels stay bounded, the sum of
contributions is exact, the cohort funnel counts what the script says."""
import random
from decimal import Decimal
from pathlib import Path

import pytest
from marshmallow import ValidationError
from prometheus_client import CollectorRegistry, generate_latest

from kit.config import setting
from kit.events import parse_event
from metrics import domain
from metrics.live import KpiCollector
from metrics.schemas import FunnelQuery
from tests.integration.metrics import metrics_script as script
from tests.support.configs import shipped_config

CONFIG = Path(__file__).resolve().parents[3] / "services" / "metrics" / "config.yml"
RULES = domain.Rules.from_config(setting(shipped_config(CONFIG), "KPIS"))


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
    assert got[k("funnel_entered", "needs_confirmed")] == 1  # D2 skipped it: not entered
    assert got[k("funnel_reached", "needs_confirmed", "lead")] == 2  # but got past it
    assert got[k("funnel_current", "won")] == 2
    assert got[k("pipeline_amount", "proposal", "EUR")] == Decimal("5000.00")
    assert got[k("forecast_weighted_amount", "EUR", "2024-06")] == Decimal("2500")
    assert got[k("deal_cycle_seconds:sum", "lost")] == (2 + 4) * 86400 * domain.MICROS
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
    ("proposal", "proposal"), ("demo_booked", "demo_booked"), ("won", "won"),
    ("Custom stage 7", "other"), ("x" * 65, "other"), (None, "other"),
])
def test_deal_stages_are_labelled_by_their_own_keys(stage, label):
    """Regression: a custom pipeline's stages were all "other"; now their own keys (the
    deals service bounds how many a pipeline has), and only what is no key is "other"."""
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


# --- funnel truth ------------------------------------------------------------------------------


def _kpis(kind, facts):
    doc = {"_id": "x", "rev": len(facts), "facts": facts}
    got = {}
    for k, v in zip(*[iter(domain.contribution(kind, doc, RULES))] * 2, strict=True):
        got[k] = got.get(k, 0) + v
    return got


def _lead_fact(seq, etype, status, **data):
    return {"id": f"l{seq}", "type": etype, "seq": seq, "time": script.T0, "source": "api",
            "status": status, **data}


ANSWER = {"created_at": script.T0, "contacted_at": script.T0 + script.H,
          "first_response_seconds": 3600.0}


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_an_answer_to_a_disqualified_lead_leaves_it_disqualified(order):
    """Regression: lead.contacted after lead.disqualified moved the lead back to
    lead_contacted in metrics while the leads service said disqualified."""
    facts = [_lead_fact(1, "lead.created", "new", created_at=script.T0),
             _lead_fact(2, "lead.disqualified", "disqualified", reason="spam"),
             _lead_fact(3, "lead.contacted", "disqualified", **ANSWER)]
    got = _kpis("leads", [facts[i] for i in order])
    k = domain.key
    assert not any(key[0] == "funnel_current" for key in got)
    assert got[k("funnel_entered", "lead_created")] == 1
    assert k("funnel_entered", "lead_contacted") not in got
    assert got[k("lead_first_response_seconds:sum")] == 3600 * domain.MICROS


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_the_first_answer_to_a_new_lead_leaves_it_new(order):
    """Regression: the first activity on a new lead counted it as contacted."""
    facts = [_lead_fact(1, "lead.created", "new", created_at=script.T0),
             _lead_fact(2, "lead.contacted", "new", **ANSWER)]
    got = _kpis("leads", [facts[i] for i in order])
    k = domain.key
    assert got[k("funnel_current", "lead_created")] == 1
    assert k("funnel_entered", "lead_contacted") not in got


def test_facts_stored_before_lead_events_had_a_status_keep_their_old_meaning():
    facts = [_lead_fact(1, "lead.created", "new", created_at=script.T0),
             _lead_fact(2, "lead.contacted", "contacted", **ANSWER)]
    for fact in facts:
        del fact["status"]
    assert _kpis("leads", facts)[domain.key("funnel_current", "lead_contacted")] == 1


def _deal_fact(seq, etype, **data):
    at = script.T0 + seq * script.H
    base = {"id": f"d{seq}", "type": etype, "seq": seq, "time": at, "pipeline_id": "default",
            "created_at": script.T0}
    if etype == "deal.won":
        base["won_at"] = at
    if etype == "deal.lost":
        base["lost_at"] = at
    if etype == "deal.stage_changed":
        base["changed_at"] = at
    return {**base, **data}


def test_a_deal_won_from_discovery_entered_only_discovery_and_won():
    """Regression: every stage up to the furthest counted as entered."""
    facts = [_deal_fact(1, "deal.created", stage="discovery", probability=10),
             _deal_fact(2, "deal.stage_changed", from_stage="discovery", to_stage="won",
                        probability=100),
             _deal_fact(3, "deal.won", from_stage="discovery")]
    got = _kpis("deals", facts)
    entered = {key[1][0] for key in got if key[0] == "funnel_entered"}
    assert entered == {"discovery", "won"}
    reached = {key[1][0] for key in got if key[0] == "funnel_reached"}
    assert reached == set(RULES.deal_funnel)  # it got past every stage: reached, not entered


@pytest.mark.parametrize("lead_id, origin", [(None, "direct"), ("L1", "lead")])
def test_deals_reach_the_funnel_by_origin(lead_id, origin):
    """Regression: lead_converted -> discovery read 6 because direct deals counted."""
    created = _deal_fact(1, "deal.created", stage="discovery", probability=10,
                         origin=origin, **({"lead_id": lead_id} if lead_id else {}))
    got = _kpis("deals", [created])
    assert {key[1] for key in got if key[0] == "funnel_reached"} == {("discovery", origin)}


def test_a_direct_deal_adopted_by_its_leads_conversion_becomes_a_lead_deal():
    facts = [_deal_fact(1, "deal.created", stage="discovery", probability=10,
                        origin="direct", lead_id="L1"),
             _deal_fact(2, "deal.updated", stage="discovery", probability=10, origin="lead")]
    got = _kpis("deals", facts)
    assert {key[1] for key in got if key[0] == "funnel_reached"} == {("discovery", "lead")}


def test_deals_of_other_pipelines_are_not_in_the_reached_funnel():
    facts = [_deal_fact(1, "deal.created", stage="demo", probability=10,
                        pipeline_id="custom"),
             _deal_fact(2, "deal.won", from_stage="demo", pipeline_id="custom")]
    got = _kpis("deals", facts)
    assert not any(key[0] == "funnel_reached" for key in got)
    assert got[domain.key("funnel_entered", "demo")] == 1


@pytest.mark.parametrize("order", [(0, 1, 2, 3), (3, 2, 1, 0), (2, 0, 3, 1)])
def test_win_rate_counts_each_deals_final_outcome_once(order):
    """Regression: a deal lost, reopened and lost again counted as two losses."""
    facts = [_deal_fact(1, "deal.created", stage="discovery", probability=10),
             _deal_fact(2, "deal.lost", from_stage="discovery", reason="price"),
             _deal_fact(3, "deal.stage_changed", from_stage="lost", to_stage="discovery",
                        probability=10),
             _deal_fact(4, "deal.lost", from_stage="discovery", reason="timing")]
    got = _kpis("deals", [facts[i] for i in order])
    k = domain.key
    assert got[k("deals_closed", "lost")] == 1
    assert k("deals_closed", "won") not in got
    assert got[k("deals_lost", "price")] == got[k("deals_lost", "timing")] == 1  # each close


@pytest.mark.parametrize("seed", range(20))
def test_conversion_ratios_of_reached_counts_are_at_most_one(seed):
    """Random deals of random moves (skips, closes, reopens), any arrival order: reached
    counts never grow along the funnel, per origin (so their ratios are at most 1)."""
    rng = random.Random(seed)
    opens = list(RULES.deal_stages)
    docs = {}
    for n in range(30):
        lead = rng.random() < 0.5
        stage = rng.choice(opens)
        facts = [_deal_fact(1, "deal.created", stage=stage, probability=10,
                            origin="lead" if lead else "direct")]
        for seq in range(2, rng.randrange(2, 8)):
            if stage in ("won", "lost"):
                to = rng.choice(opens)
                facts.append(_deal_fact(seq, "deal.stage_changed", from_stage=stage,
                                        to_stage=to, probability=10))
            elif rng.random() < 0.3:
                to = rng.choice(("won", "lost"))
                facts.append(_deal_fact(seq, f"deal.{to}", from_stage=stage, reason="x"))
            else:
                to = rng.choice(opens)
                facts.append(_deal_fact(seq, "deal.stage_changed", from_stage=stage,
                                        to_stage=to, probability=10))
            stage = to
        rng.shuffle(facts)
        docs[("deals", f"D{n}")] = {"_id": f"D{n}", "rev": len(facts), "facts": facts}
    got = totals(docs)
    for origin in domain.ORIGINS:
        counts = [got.get(domain.key("funnel_reached", s, origin), 0) for s in RULES.deal_funnel]
        assert counts == sorted(counts, reverse=True)


def test_the_cohort_funnel_counts_only_deals_of_the_funnel_pipeline_by_default():
    """A lead's deal won in a custom pipeline never had the funnel pipeline's stages."""
    lead = {"_id": "L1", "rev": 1, "facts": [
        _lead_fact(1, "lead.created", "new", created_at=script.T0),
        _lead_fact(2, "lead.converted", "converted", created_at=script.T0,
                   converted_at=script.T0)]}
    deal = {"_id": "D1", "rev": 2, "facts": [
        _deal_fact(1, "deal.created", stage="demo", probability=10, pipeline_id="custom",
                   lead_id="L1", origin="lead"),
        _deal_fact(2, "deal.won", from_stage="demo", pipeline_id="custom")]}
    reached = {s["stage"]: s["reached"] for s in
               domain.cohort_funnel([lead], [deal], RULES)["stages"]}
    assert reached["lead_converted"] == 1 and reached["discovery"] == reached["won"] == 0
    custom = {s["stage"]: s["reached"] for s in
              domain.cohort_funnel([lead], [deal], RULES, "custom")["stages"]}
    assert custom["won"] == 1


def test_a_lead_is_qualified_when_its_event_says_not_when_it_was_sent():
    """A historical import sends lead.qualified today for a lead qualified months ago: the
    qualified→converted time comes from the data, never from the envelope's time."""
    past = script.T0 - 30 * 24 * script.H
    facts = [_lead_fact(1, "lead.created", "new", created_at=past - 2 * script.H),
             _lead_fact(2, "lead.qualified", "qualified", qualified_at=past)]
    summary = domain.lead_summary({"facts": facts}, RULES)
    assert summary["times"][RULES.lead_stages[2]] == past
    legacy = domain.lead_summary({"facts": facts[:1] + [_lead_fact(2, "lead.qualified",
                                                                  "qualified")]}, RULES)
    assert legacy["times"][RULES.lead_stages[2]] == script.T0
