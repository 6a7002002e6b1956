"""Activities per deal per stage and recycled leads converted on real RabbitMQ and FerretDB:
delivered out of order and with duplicates they are exact (in /metrics and in the funnel
answer), a restart restores them exactly from the snapshot, and a redelivery of the whole
history changes only the duplicate counts."""
import random

from tests.integration.metrics import metrics_script as script
from tests.integration.metrics import test_metrics_snapshots as snapshots
from tests.integration.metrics.test_metrics_projections import kpis, settle
from tests.integration.metrics.test_metrics_snapshots import SNAPSHOTTING, snapshot_covering
from tests.unit.metrics.test_metrics_crm_kpis import history

metrics = snapshots.metrics  # the snapshot tests' fixture: (container, client, live)
CRM_SERIES = ("dealflow_deal_activities_total", "dealflow_leads_recycled_total",
              "dealflow_leads_recycled_converted_total", "dealflow_deal_tasks_due_total")
WANT = {
    ("dealflow_deal_activities_total", (("kind", "call"), ("stage", "discovery"))): 2,
    ("dealflow_deal_activities_total", (("kind", "email"), ("stage", "discovery"))): 1,
    ("dealflow_deal_activities_total", (("kind", "meeting"), ("stage", "proposal"))): 1,
    ("dealflow_deal_activities_total", (("kind", "note"), ("stage", "demo"))): 1,
    ("dealflow_leads_recycled_total", ()): 2,
    ("dealflow_leads_recycled_converted_total", ()): 1,
}


def crm_history():
    """The unit tests' leads and activities, plus the deals the activities were logged on:
    D1 and D2 entered discovery, D1 then proposal."""
    deals = script.History()
    d1 = deals.deal("D1", script.T0, "discovery", "100.00", "EUR", 10)
    deals.deal("D2", script.T0, "discovery", "200.00", "EUR", 10)
    deals.move(d1, "proposal", script.T0 + script.H, 30)
    return history() + deals.events


def crm_kpis(client):
    return {k: v for k, v in kpis(client).items() if k[0] in CRM_SERIES and v}


def totals(client, **params):
    resp = client.get("/api/v1/funnel", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["totals"]


def test_crm_kpis_are_exact_under_duplicates_and_reordering_and_survive_a_restart(
        metrics, make_config, publish, mongo_db):
    events = crm_history()
    rng = random.Random(3)
    twice = rng.sample(events, len(events) // 2)
    order = list(reversed(events)) + twice
    rng.shuffle(order)
    config = make_config("metrics", KPIS=SNAPSHOTTING)
    container, client, live = metrics(config)

    publish(order)
    settle(client, len(events), len(twice))
    assert crm_kpis(client) == WANT
    got = totals(client)
    by_stage = {row["stage"]: row for row in got["activities_by_stage"]}
    assert by_stage["discovery"] == {"stage": "discovery", "deals": 2, "activities": 3,
                                     "by_kind": {"call": 2, "email": 1, "meeting": 0,
                                                 "note": 0}, "per_deal": 1.5}
    assert by_stage["proposal"]["per_deal"] == 1.0
    assert got["recycled_leads"] == {"recycled": 2, "converted": 1, "conversion_rate": 0.5}
    # another pipeline's stages: its activity was logged, none of its deals is known yet
    (demo,) = totals(client, pipeline="custom")["activities_by_stage"]
    assert (demo["stage"], demo["deals"], demo["activities"], demo["per_deal"]) == (
        "demo", 0, 1, None)

    snapshot_covering(mongo_db, live)
    container.stop()
    container, client, live = metrics(config)
    assert live.restored_from == "snapshot"
    assert crm_kpis(client) == WANT
    assert totals(client) == got
    assert totals(client, pipeline="custom")["activities_by_stage"] == [demo]

    # a redelivery of everything (a replay) counts duplicates only
    publish(events)
    settle(client, len(events), len(twice) + len(events))
    assert crm_kpis(client) == WANT
    assert totals(client) == got
