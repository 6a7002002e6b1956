"""The metrics service on real RabbitMQ and FerretDB: a scripted history delivered out of
order and with duplicates gives exactly the expected value of every KPI and of the cohort
funnel; a restart restores them; a full replay changes nothing but the duplicate counts;
two instances expose the same totals."""

import eventlet
import pytest

from metrics.service import MetricsService
from tests.integration.metrics import metrics_script as script
from tests.support import wait


def wait_for(predicate, timeout=30.0):
    """The shared poll, with the patience a full KPI refresh needs."""
    return wait.wait_for(predicate, timeout=timeout, interval=0.1)

KPIS = {"refresh_seconds": 0.3, "refresh_overlap_seconds": 2}






@pytest.fixture
def metrics(container_factory, make_config, api):
    """Start a metrics container; returns (container, client) once its KPIs are loaded."""
    def start(config=None):
        config = config or make_config("metrics", KPIS=KPIS)
        container = container_factory(MetricsService, config)
        container.start()
        client = api(config)
        assert wait_for(lambda: "dealflow_metrics_projections_loaded 1.0"
                        in client.get("/metrics").text)
        return container, client, config
    return start


def kpis(client):
    resp = client.get("/metrics")
    assert resp.status_code == 200
    return script.samples(resp.text)


def applied_counts(client):
    got = kpis(client)
    return (sum(v for (n, _), v in got.items() if n == "dealflow_events_applied_total"),
            sum(v for (n, _), v in got.items() if n == "dealflow_events_duplicate_total"))


def settle(client, applied, duplicates):
    assert wait_for(lambda: applied_counts(client) == (applied, duplicates)), \
        applied_counts(client)


def test_scripted_history_gives_exact_kpis_and_survives_restart_and_replay(metrics, publish):
    events = script.build()
    order, dups = script.deliveries(events)
    container, client, config = metrics()

    publish(order)
    settle(client, len(events), sum(dups.values()))
    problems = script.mismatches(kpis(client), events, dups)
    assert problems == [], "\n".join(problems)

    # a restart reads the projections back: nothing is reset
    container.stop()
    _, client, _ = metrics(config)
    assert script.mismatches(kpis(client), events, dups) == []

    # replaying the whole history only counts duplicates
    publish(events)
    replayed = {t: dups.get(t, 0) + n for t, n in script.counts_by_type(events).items()}
    settle(client, len(events), sum(replayed.values()))
    assert script.mismatches(kpis(client), events, replayed) == []


def test_cohort_funnel_api(metrics, publish):
    events = script.build()
    order, dups = script.deliveries(events)
    _, client, _ = metrics()
    publish(order)
    settle(client, len(events), sum(dups.values()))

    resp = client.get("/api/v1/funnel", params={
        "from": script.T0.isoformat(), "to": (script.T0 + script.D).isoformat()})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["leads"] == 4
    assert {s["stage"]: s["reached"] for s in body["stages"]} == script.COHORT_REACHED
    assert [s["stage"] for s in body["stages"]] == script.STAGES
    reached = script.COHORT_REACHED
    for t in body["transitions"]:
        pair = (t["from"], t["to"])
        assert t["conversion_rate"] == round(reached[t["to"]] / reached[t["from"]], 4), pair
        assert (t["median_seconds"], t["samples"]) == script.COHORT_MEDIANS[pair], pair
    assert body["overall_conversion_rate"] == 0.25

    # another pipeline: the leads count, no deal stage does
    other = client.get("/api/v1/funnel", params={
        "from": script.T0.isoformat(), "to": (script.T0 + script.D).isoformat(),
        "pipeline": "elsewhere"}).json()
    assert [s["reached"] for s in other["stages"]] == [4, 3, 2, 2, 0, 0, 0, 0, 0, 0]
    # the older lead L5 alone
    older = client.get("/api/v1/funnel", params={
        "from": (script.T0 - 11 * script.D).isoformat(),
        "to": (script.T0 - 6 * script.D).isoformat()}).json()
    assert [s["reached"] for s in older["stages"]][:4] == [1, 1, 1, 0]
    # L6 (answered, still new) and L7 (disqualified, then answered): created only
    answered = client.get("/api/v1/funnel", params={
        "from": (script.T0 - 6 * script.D).isoformat(), "to": script.T0.isoformat()}).json()
    assert [s["reached"] for s in answered["stages"]][:4] == [2, 0, 0, 0]


@pytest.mark.parametrize("params, field", [
    ({"from": "yesterday"}, "from"),
    ({"from": "2024-05-02T00:00:00Z", "to": "2024-05-01T00:00:00Z"}, "to"),
])
def test_funnel_rejects_bad_windows(metrics, params, field):
    _, client, _ = metrics()
    resp = client.get("/api/v1/funnel", params=params)
    assert resp.status_code == 400
    assert field in resp.json()["errors"]


def test_two_instances_expose_the_same_totals(metrics, make_config, publish):
    events = script.build()
    order, dups = script.deliveries(events, seed=11)
    first = make_config("metrics", KPIS=KPIS)
    second = dict(first, WEB_SERVER_ADDRESS=make_config("metrics")["WEB_SERVER_ADDRESS"])
    _, a, _ = metrics(first)
    _, b, _ = metrics(second)

    publish(order)
    settle(a, len(events), sum(dups.values()))
    settle(b, len(events), sum(dups.values()))
    assert script.mismatches(kpis(a), events, dups) == []
    assert kpis(a) == kpis(b)


def test_events_published_as_soon_as_it_is_ready_are_not_lost(container_factory, make_config,
                                                               api, publish):
    """/readyz answers while nameko's consumer may still be binding its queues; the kit binds
    them during setup, so an event published the moment readiness says yes still arrives."""
    config = make_config("metrics", KPIS=KPIS)
    container = container_factory(MetricsService, config)
    starting = eventlet.spawn(container.start)
    client = api(config)

    def ready():
        try:
            return client.get("/readyz", timeout=1).status_code == 200
        except Exception:  # noqa: BLE001 - not listening yet
            return False

    assert wait_for(ready)
    events = script.build()
    publish(events)
    starting.wait()
    settle(client, len({e["id"] for e in events}), 0)
