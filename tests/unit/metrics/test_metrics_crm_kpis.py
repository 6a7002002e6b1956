"""Activities per deal per stage and recycled leads converted: pure rules. Activity and
task events carry their own sequences, so they are projections of their own; a lead's
recycling and later conversion are read by sequence, so arrival order does not matter."""
import datetime as dt
import itertools
import random

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from kit.events import new_event, parse_event
from metrics import domain, snapshot
from metrics.live import KpiCollector
from tests.integration.metrics import metrics_script as script
from tests.unit.metrics.test_metrics_domain import RULES, projections, totals

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)


def activity(aid, deal_id, kind, stage, pipeline="default"):
    return new_event("deal.activity_logged", aid, {
        "deal_id": deal_id, "activity_id": aid, "type": kind, "pipeline_id": pipeline,
        "stage": stage, "owner_id": "rep-1", "at": T0}, 1, time=T0)


def lead_events(lid, statuses):
    """lead.<type> events with the lead's status after each, in sequence order."""
    out = []
    for seq, (etype, status) in enumerate(statuses, start=1):
        data = {"lead_id": lid, "status": status}
        if etype == "lead.created":
            data.update(name=lid, source="api", score=50, grade="B", created_at=T0)
        elif etype == "lead.disqualified":
            data.update(source="api", reason="no budget")
        elif etype == "lead.recycled":
            data.update(source="api", from_status="disqualified", reason="budget next year",
                        recycled_at=T0)
        elif etype == "lead.converted":
            data.update(name=lid, source="api", created_at=T0, converted_at=T0)
        elif etype == "lead.qualified":
            data.update(source="api", score=80, grade="A")
        out.append(new_event(etype, lid, data, seq, time=T0))
    return out


RECYCLED_AND_CONVERTED = [("lead.created", "new"), ("lead.disqualified", "disqualified"),
                          ("lead.recycled", "nurture"), ("lead.qualified", "qualified"),
                          ("lead.converted", "converted")]
RECYCLED_ONLY = [("lead.created", "new"), ("lead.disqualified", "disqualified"),
                 ("lead.recycled", "nurture")]
CONVERTED_NEVER_RECYCLED = [("lead.created", "new"), ("lead.qualified", "qualified"),
                            ("lead.converted", "converted")]


def history():
    events = (lead_events("L1", RECYCLED_AND_CONVERTED) + lead_events("L2", RECYCLED_ONLY)
              + lead_events("L3", CONVERTED_NEVER_RECYCLED))
    events += [activity("A1", "D1", "call", "discovery"),
               activity("A2", "D1", "email", "discovery"),
               activity("A3", "D1", "meeting", "proposal"),
               activity("A4", "D2", "call", "discovery"),
               activity("A5", "D3", "note", "demo", pipeline="custom")]
    return events


EXPECTED = {
    ("deal_activities", ("call", "discovery")): 2,
    ("deal_activities", ("email", "discovery")): 1,
    ("deal_activities", ("meeting", "proposal")): 1,
    ("deal_activities", ("note", "demo")): 1,
    ("leads_recycled", ()): 2,
    ("leads_recycled_converted", ()): 1,
}


def _crm(values):
    return {k: v for k, v in values.items()
            if k[0] in ("deal_activities", "leads_recycled", "leads_recycled_converted")}


@pytest.mark.parametrize("seed", range(5))
def test_any_order_and_duplicates_give_the_same_counts(seed):
    events = history()
    rng = random.Random(seed)
    delivered = events + rng.sample(events, 6)
    rng.shuffle(delivered)
    # the store keeps one fact per event id: a duplicate is dropped before the rules
    distinct = list({parse_event(e)[0]["id"]: e for e in delivered}.values())
    assert _crm(totals(projections(distinct))) == EXPECTED


def test_activity_events_are_projections_of_their_own():
    envelope, data = parse_event(activity("A1", "D1", "call", "discovery"))
    envelope["data"] = data
    kind, entity_id, fact = domain.fact_from_event(envelope)
    assert (kind, entity_id) == ("activities", "A1")
    assert fact["type"] == "deal.activity_logged" and fact["activity"] == "call"
    assert fact["stage"] == "discovery" and fact["deal_id"] == "D1"


@pytest.mark.parametrize("statuses, recycled, converted", [
    (RECYCLED_AND_CONVERTED, 1, 1),
    (RECYCLED_ONLY, 1, 0),
    (CONVERTED_NEVER_RECYCLED, 0, 0),
    # recycled twice: still one lead
    (RECYCLED_ONLY + [("lead.disqualified", "disqualified"), ("lead.recycled", "nurture")],
     1, 0),
])
def test_recycled_leads_and_their_conversions_count_each_lead_once(statuses, recycled,
                                                                   converted):
    events = lead_events("L", statuses)
    for order in itertools.islice(itertools.permutations(events), 24):
        got = totals(projections(list(order)))
        assert got.get(domain.key("leads_recycled"), 0) == recycled
        assert got.get(domain.key("leads_recycled_converted"), 0) == converted


@pytest.mark.parametrize("kind, label", [("call", "call"), ("Meeting", "meeting"),
                                         ("fax", "other"), (None, "other")])
def test_activity_kinds_are_bounded_labels(kind, label):
    assert domain.activity_label(kind) == label


def with_deals():
    """history() and the deals its activities were logged on: D1 and D2 entered discovery
    (D1 then proposal) in the default pipeline, D3 demo in the custom one, D4 demo of the
    default pipeline without activities."""
    deals = script.History()
    d1 = deals.deal("D1", T0, "discovery", "100.00", "EUR", 10)
    deals.deal("D2", T0, "discovery", "200.00", "EUR", 10)
    deals.move(d1, "proposal", T0 + dt.timedelta(hours=1), 30)
    deals.deal("D3", T0, "demo", "300.00", "EUR", 10, pipeline="custom")
    deals.deal("D4", T0, "needs_confirmed", "300.00", "EUR", 10)
    return history() + deals.events


def test_the_funnel_totals_divide_a_pipelines_activities_by_its_deals_in_each_stage():
    values = totals(projections(with_deals()))
    got = domain.crm_totals(values, RULES, "default")
    assert got["activities_by_stage"] == [
        {"stage": "discovery", "deals": 2, "activities": 3, "per_deal": 1.5,
         "by_kind": {"call": 2, "email": 1, "meeting": 0, "note": 0}},
        {"stage": "needs_confirmed", "deals": 1, "activities": 0, "per_deal": 0.0,
         "by_kind": {"call": 0, "email": 0, "meeting": 0, "note": 0}},
        {"stage": "proposal", "deals": 1, "activities": 1, "per_deal": 1.0,
         "by_kind": {"call": 0, "email": 0, "meeting": 1, "note": 0}},
    ]
    assert got["recycled_leads"] == {"recycled": 2, "converted": 1, "conversion_rate": 0.5}
    custom = domain.crm_totals(values, RULES, "custom")["activities_by_stage"]
    assert [(r["stage"], r["deals"], r["per_deal"]) for r in custom] == [("demo", 1, 1.0)]
    assert domain.crm_totals(values, RULES, "nope")["activities_by_stage"] == []


def test_activities_of_a_deal_not_seen_yet_have_no_per_deal_figure():
    got = domain.crm_totals(totals(projections(history())), RULES, "default")
    assert got["activities_by_stage"][0]["per_deal"] is None


def test_the_new_series_are_exposed_and_a_snapshot_restores_them_exactly():
    agg = domain.Aggregates()
    docs = projections(history())
    for (kind, entity_id), doc in docs.items():
        agg.replace(kind, entity_id, doc["rev"], domain.contribution(kind, doc, RULES))
    from metrics.cohorts import Cohorts
    codec = snapshot.Codec()
    fingerprint = snapshot.fingerprint(RULES, 86400)
    blob = snapshot.encode(snapshot.capture(agg, Cohorts(RULES, 86400)), codec, T0,
                           fingerprint)
    state, _, _, _ = snapshot.decode(blob, fingerprint, RULES, 86400)
    assert _crm(state.values) == _crm(agg.values)
    assert state.entity_count("activities") == 5

    class Live:
        rules, ready = RULES, True

    Live.state = state
    registry = CollectorRegistry()
    registry.register(KpiCollector(Live()))
    text = generate_latest(registry).decode()
    assert 'dealflow_deal_activities_total{kind="call",stage="discovery"} 2.0' in text
    assert 'dealflow_deal_activities_total{kind="note",stage="needs_confirmed"} 0.0' in text
    assert "dealflow_leads_recycled_total 2.0" in text
    assert "dealflow_leads_recycled_converted_total 1.0" in text

