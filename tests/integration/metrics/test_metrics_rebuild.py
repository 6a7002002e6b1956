"""Rebuilding the metrics projections from the producers' event streams, on real RabbitMQ
and FerretDB: the rebuilt database gives exactly the live KPIs and cohort funnels, the
service switches to it while it keeps serving (and a restart stays on it), a second
request does not start a second rebuild, and an abandoned rebuild is taken over."""
import pytest
from kombu import Connection

from kit.amqp import ConfirmingPublisher
from kit.fields import utcnow
from kit.streams import stream_declarer
from metrics.live import LiveKpis
from metrics.rebuild import rebuild_once
from metrics.service import MetricsService
from metrics.store import ACTIVE, CONTROL
from tests.integration.metrics import metrics_script as script
from tests.integration.metrics.test_metrics_projections import kpis, settle, wait_for
from tests.integration.metrics.test_metrics_snapshots import funnels

KPIS = {"refresh_seconds": 0.3, "refresh_overlap_seconds": 2, "snapshot_seconds": 0.5}
REBUILD = {"idle_seconds": 0.5, "switch_grace_seconds": 1, "heartbeat_seconds": 0.2,
           "stale_seconds": 30}
DUPLICATES = "dealflow_events_duplicate_total"


@pytest.fixture
def logged(rabbit_config, make_config):
    """Publish as the producers do: to their exchanges, and so into their streams."""
    publisher = ConfirmingPublisher(rabbit_config["AMQP_URI"],
                                    on_declare=stream_declarer(make_config("leads")))

    def send(bodies):
        publisher.publish_batch([(*script.routed(b), b, {}) for b in bodies])

    yield send
    publisher.close()


@pytest.fixture
def metrics(container_factory, make_config, api):
    def start(config=None):
        config = config or make_config("metrics", KPIS=KPIS, REBUILD=REBUILD)
        container = container_factory(MetricsService, config)
        container.start()
        client = api(config)
        assert wait_for(lambda: "dealflow_metrics_projections_loaded 1.0"
                        in client.get("/metrics").text)
        live = next(d for d in container.dependencies if isinstance(d, LiveKpis))
        return container, client, config, live
    return start


def rebuild(client):
    resp = client.post("/api/v1/admin/rebuild")
    assert resp.status_code == 202, resp.text
    return resp.json()


def finished(client):
    status = wait_for(lambda: (s := client.get("/api/v1/admin/rebuild").json())["rebuild"]
                      ["state"] != "running" and s, timeout=60)
    assert status and status["rebuild"]["state"] == "done", status
    return status


def test_a_rebuild_from_the_streams_gives_exactly_the_live_kpis(metrics, logged, mongo_db):
    events = script.build()
    order, dups = script.deliveries(events)
    container, client, config, live = metrics()
    logged(order)
    settle(client, len(events), sum(dups.values()))
    before, funnels_before = kpis(client), funnels(client)
    assert script.mismatches(before, events, dups) == []

    started = rebuild(client)
    target = started["rebuild"]["target"]
    assert started["active"] == mongo_db.name and target.startswith(mongo_db.name + "_r")
    status = finished(client)
    assert status["active"] == target and status["previous"] == mongo_db.name
    assert status["rebuild"]["events"] == len(order)  # the streams hold the duplicates too
    # in the service's own database (its credentials reach no other), prefixed
    prefix = target[len(mongo_db.name) + 1:] + "_"
    assert {prefix + "leads", prefix + "deals", "leads", "deals"} <= set(
        mongo_db.list_collection_names())
    assert wait_for(lambda: live.source_db == target and live.ready)
    # duplicates included: the streams hold each publication, as the live queues got them
    assert kpis(client) == before
    assert funnels(client) == funnels_before
    assert live.restored_from == "snapshot"
    # the audit trail is no projection: the switch leaves it where it was
    audit = client.get("/api/v1/audit").json()["items"]
    assert [e["action"] for e in audit] == ["start_rebuild"], audit

    # the switch outlives the process: a restart reads the rebuilt database
    container.stop()
    _, client, _, live = metrics(config)
    assert live.source_db == target
    assert kpis(client) == before
    assert funnels(client) == funnels_before


def test_the_service_keeps_applying_events_during_and_after_a_rebuild(metrics, logged):
    events = script.build()
    order, dups = script.deliveries(events, seed=5)
    half = len(order) // 2
    _, client, _, live = metrics()
    logged(order[:half])
    settle(client, len({e["id"] for e in order[:half]}),
           half - len({e["id"] for e in order[:half]}))

    target = rebuild(client)["rebuild"]["target"]
    again = rebuild(client)  # not a second one
    assert again["rebuild"]["state"] == "running" and again["rebuild"]["target"] == target
    logged(order[half:])
    finished(client)
    assert wait_for(lambda: live.source_db == target)
    # an event may reach the new database twice (from the stream and from its queue after
    # the switch): that counts as a delivery of an applied event, and nothing else changes
    assert wait_for(lambda: [m for m in script.mismatches(kpis(client), events, dups)
                             if DUPLICATES not in m] == []), \
        script.mismatches(kpis(client), events, dups)


def test_an_abandoned_rebuild_is_taken_over(metrics, mongo_db, logged):
    events = script.build()
    _, client, _, live = metrics()
    logged(events)
    settle(client, len(events), 0)
    before = kpis(client)
    dead = mongo_db.name + "_rdeadbeef"
    mongo_db["rdeadbeef_leads"].insert_one({"_id": "half-done"})
    long_ago = utcnow().replace(year=2020)
    mongo_db[CONTROL].insert_one({"_id": ACTIVE, "active": mongo_db.name, "rebuild": {
        "state": "running", "owner": "gone", "target": dead, "started_at": long_ago,
        "heartbeat": long_ago, "events": 10}})

    target = rebuild(client)["rebuild"]["target"]
    assert target != dead
    finished(client)
    assert "rdeadbeef_leads" not in mongo_db.list_collection_names()
    assert wait_for(lambda: live.source_db == target)
    assert kpis(client) == before


@pytest.mark.parametrize("role", ["director", "manager", "finance", "rep"])
def test_only_admins_rebuild(metrics, api, bearer, role):
    _, _, config, _ = metrics()
    client = api(config, bearer(role, sub="someone", team="east"))
    assert client.post("/api/v1/admin/rebuild").status_code == 403
    assert client.get("/api/v1/admin/rebuild").status_code == 403


def test_make_replay_rebuilds_and_running_instances_follow(metrics, logged, mongo_db):
    """`make replay` (metrics.rebuild in a process of its own) switches the control record;
    the running instance follows at its next refresh and keeps applying new events."""
    events = script.build()
    first, last = events[:-5], events[-5:]
    _, client, config, live = metrics()
    logged(first)
    settle(client, len(first), 0)
    before = kpis(client)

    ran, status = rebuild_once(config)
    assert ran and status["rebuild"]["state"] == "done", status
    target = status["active"]
    assert wait_for(lambda: live.source_db == target and live.ready)
    assert kpis(client) == before
    assert rebuild_once(config)[0]  # again: another fresh set, the same KPIs
    assert wait_for(lambda: live.source_db == mongo_db[CONTROL].find_one(
        {"_id": ACTIVE})["active"] != target)
    logged(last)
    settle(client, len(events), 0)
    assert script.mismatches(kpis(client), events, {}) == []
    # the set two switches ago is gone; the one before stays as a way back
    prefixes = {c.split("_", 1)[0] for c in mongo_db.list_collection_names() if "_" in c}
    assert target[len(mongo_db.name) + 1:] in prefixes
    assert "leads" not in mongo_db.list_collection_names()


@pytest.mark.parametrize("allowed", [False, True])
def test_a_stream_that_lost_its_beginning_is_not_rebuilt_from_unless_allowed(
        metrics, make_config, rabbit_config, logged, mongo_db, allowed):
    """Retention (here a few kilobytes) dropped the oldest lead events: a rebuild would
    leave them out, so it fails and the service stays on its projections, unless
    REBUILD.allow_truncated says the kept history is what is wanted."""
    with Connection(rabbit_config["AMQP_URI"]) as conn:
        conn.channel().queue_declare("leads.events.stream", durable=True, auto_delete=False,
                                     arguments={"x-queue-type": "stream",
                                                "x-max-length-bytes": 4000,
                                                "x-stream-max-segment-size-bytes": 1000})
    events = script.build()
    config = make_config("metrics", KPIS=KPIS, REBUILD={**REBUILD, "allow_truncated": allowed})
    _, client, _, live = metrics(config)
    for event in events:  # one chunk each, so whole segments can go
        logged([event])
    settle(client, len(events), 0)
    before = kpis(client)

    target = rebuild(client)["rebuild"]["target"]
    status = wait_for(lambda: (s := client.get("/api/v1/admin/rebuild").json())["rebuild"]
                      ["state"] != "running" and s, timeout=60)
    if allowed:
        assert status["rebuild"]["state"] == "done", status
        # the lead events retention dropped are missing (once the instance, which names
        # the new set before it has read it, has restored from it)
        assert wait_for(lambda: live.source_db == target and kpis(client) != before)
    else:
        assert status["rebuild"]["state"] == "failed", status
        assert "leads.events.stream starts at offset" in status["rebuild"]["error"]
        assert status["active"] == mongo_db.name and live.source_db == mongo_db.name
        assert not any(c.startswith(target[len(mongo_db.name) + 1:])
                       for c in mongo_db.list_collection_names())
        assert kpis(client) == before
