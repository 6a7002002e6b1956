"""KPI snapshots on real RabbitMQ and FerretDB: a restart restores the exposition and the
cohort funnel exactly from the snapshot, catches up the projections changed after it
(written meanwhile by another instance), falls back to reading every projection when the
snapshot is corrupt or incomplete, and an idle instance writes no new snapshot."""
import threading

import eventlet
import pytest

from metrics import snapshot
from metrics.live import LiveKpis
from metrics.service import MetricsService
from metrics.store import ACTIVE, CONTROL, MANIFEST, SNAPSHOTS
from tests.integration.metrics import metrics_script as script
from tests.integration.metrics.test_metrics_projections import (
    applied_counts,
    kpis,
    settle,
    wait_for,
)

SNAPSHOTTING = {"refresh_seconds": 0.3, "refresh_overlap_seconds": 2, "snapshot_seconds": 0.5}
NO_SNAPSHOTS = dict(SNAPSHOTTING, snapshot_seconds=3600)
WINDOWS = [(script.T0, script.T0 + script.D), (script.T0 - 11 * script.D, script.T0 + script.D),
           (script.T0 - 6 * script.D + 5 * script.H, script.T0 + 3 * script.H)]


@pytest.fixture
def metrics(container_factory, make_config, api):
    """Start a metrics container; (container, client, config, its LiveKpis) once ready."""
    def start(config):
        container = container_factory(MetricsService, config)
        container.start()
        client = api(config)
        assert wait_for(lambda: "dealflow_metrics_projections_loaded 1.0"
                        in client.get("/metrics").text)
        live = next(d for d in container.dependencies if isinstance(d, LiveKpis))
        return container, client, live
    return start


def funnels(client):
    out = []
    for start, end in WINDOWS:
        for pipeline in (None, script.CUSTOM):
            params = {"from": start.isoformat(), "to": end.isoformat()}
            if pipeline:
                params["pipeline"] = pipeline
            resp = client.get("/api/v1/funnel", params=params)
            assert resp.status_code == 200, resp.text
            out.append(resp.json())
    return out


def snapshot_covering(mongo_db, live):
    """Wait until the instance has written a snapshot of everything it holds."""
    assert wait_for(lambda: live._snapshotted == live.state.changes
                    and mongo_db[SNAPSHOTS].find_one({"_id": MANIFEST}) is not None)
    return mongo_db[SNAPSHOTS].find_one({"_id": MANIFEST})


def split(order):
    half = len(order) // 2
    first, second = order[:half], order[half:]
    distinct = len({e["id"] for e in first})
    return first, second, distinct, len(first) - distinct


def test_a_restart_restores_the_snapshot_exactly(metrics, make_config, publish, mongo_db):
    events = script.build()
    order, dups = script.deliveries(events)
    config = make_config("metrics", KPIS=SNAPSHOTTING)
    container, client, live = metrics(config)
    publish(order)
    settle(client, len(events), sum(dups.values()))
    snapshot_covering(mongo_db, live)
    before, funnel_before = kpis(client), funnels(client)
    assert script.mismatches(before, events, dups) == []

    container.stop()
    _, client, live = metrics(config)
    assert live.restored_from == "snapshot"
    assert kpis(client) == before
    assert funnels(client) == funnel_before


def test_changes_after_the_snapshot_are_caught_up_and_instances_converge(
        metrics, make_config, publish, mongo_db):
    """The snapshot covers the first half of the history; another instance (writing no
    snapshot) applies the second half; a new instance restores the snapshot, re-reads what
    changed since its watermark and exposes the whole history, as the other one does."""
    events = script.build()
    order, dups = script.deliveries(events, seed=5)
    first, second, applied, duplicates = split(order)
    config = make_config("metrics", KPIS=SNAPSHOTTING)
    container, client, live = metrics(config)
    publish(first)
    settle(client, applied, duplicates)
    manifest = snapshot_covering(mongo_db, live)
    container.stop()

    other = dict(config, KPIS={**config["KPIS"], **NO_SNAPSHOTS},
                 WEB_SERVER_ADDRESS=make_config("metrics")["WEB_SERVER_ADDRESS"])
    _, writer, _ = metrics(other)
    publish(second)
    settle(writer, len(events), sum(dups.values()))

    # (writing no snapshot of its own either, so the manifest read below is the one it
    # restored, however slowly the machine runs)
    third = dict(other, WEB_SERVER_ADDRESS=make_config("metrics")["WEB_SERVER_ADDRESS"])
    _, client, live = metrics(third)
    assert live.restored_from == "snapshot"
    assert mongo_db[SNAPSHOTS].find_one({"_id": MANIFEST})["snap"] == manifest["snap"]
    assert applied_counts(client) == (len(events), sum(dups.values()))
    assert script.mismatches(kpis(client), events, dups) == []
    assert kpis(client) == kpis(writer)
    assert funnels(client) == funnels(writer)


@pytest.mark.parametrize("damage", ["corrupt chunk", "missing chunk", "other rules"])
def test_an_unusable_snapshot_falls_back_to_every_projection(metrics, make_config, publish,
                                                             mongo_db, damage):
    events = script.build()
    order, dups = script.deliveries(events, seed=3)
    config = make_config("metrics", KPIS=SNAPSHOTTING)
    container, client, live = metrics(config)
    publish(order)
    settle(client, len(events), sum(dups.values()))
    manifest = snapshot_covering(mongo_db, live)
    before = kpis(client)
    container.stop()

    chunk = f"{manifest['snap']}.0"
    if damage == "corrupt chunk":
        mongo_db[SNAPSHOTS].update_one({"_id": chunk}, {"$set": {"data": b"garbage"}})
    elif damage == "missing chunk":
        mongo_db[SNAPSHOTS].delete_one({"_id": chunk})
    else:  # another funnel: the stored contributions no longer mean the same
        config = dict(config, KPIS={**config["KPIS"], "cohort_bucket_seconds": 3600})
    _, client, live = metrics(config)
    assert live.restored_from == "projections"
    assert kpis(client) == before


def test_an_idle_instance_writes_no_new_snapshot(metrics, make_config, publish, mongo_db):
    events = script.build()
    config = make_config("metrics", KPIS=SNAPSHOTTING)
    _, client, live = metrics(config)
    publish(events)
    settle(client, len(events), 0)
    manifest = snapshot_covering(mongo_db, live)
    written, passes = live.state.changes, live.passes
    assert wait_for(lambda: live.passes >= passes + 6)  # two snapshot periods at least
    assert live.state.changes == written
    assert mongo_db[SNAPSHOTS].find_one({"_id": MANIFEST})["snap"] == manifest["snap"]


def test_a_snapshot_encoded_while_a_rebuild_switches_stays_in_the_set_it_was_read_from(
        metrics, make_config, publish, mongo_db, monkeypatch):
    """A rebuild in the same process points the store at its new set at once, before the
    next pass restores from there. A snapshot of the old state that was being encoded
    meanwhile goes to the old set: written to the new one, with a later watermark than
    the rebuild's own, it would be what this and every other instance restored."""
    _, client, live = metrics(make_config("metrics", KPIS=SNAPSHOTTING))
    events = script.build()
    order, dups = script.deliveries(events)
    publish(order)
    settle(client, len(events), sum(dups.values()))
    target = f"{mongo_db.name}_rswitch"  # an empty new set, as a rebuild of nothing makes
    real, switched = snapshot.encode, threading.Event()

    def switching(*args):  # runs in a thread of eventlet's pool, as the encode does
        if not switched.is_set():
            mongo_db[CONTROL].update_one({"_id": ACTIVE}, {"$set": {"active": target}},
                                         upsert=True)
            live.store.follow_active()
            switched.set()
        return real(*args)

    monkeypatch.setattr(snapshot, "encode", switching)
    publish([script.build()[0]])  # one more change, so that a snapshot is due
    assert wait_for(switched.is_set)
    assert wait_for(lambda: live.source_db == target and live.ready)
    eventlet.sleep(3 * SNAPSHOTTING["snapshot_seconds"])

    # the instance serves the new set (empty), and so does one started on it afterwards
    assert applied_counts(client) == (0, 0)
    config = make_config("metrics", KPIS=SNAPSHOTTING)
    _, restarted, _ = metrics(config)
    assert applied_counts(restarted) == (0, 0)
    assert mongo_db[SNAPSHOTS].find_one({"_id": MANIFEST}) is not None  # the old set's
