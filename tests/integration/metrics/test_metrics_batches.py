"""Metrics applies events in batches (kit.batches): a container killed before its batches
were written, or after and before they were acked, loses nothing and applies nothing
twice; redelivered events that were written already only count as duplicates."""
import pytest
from eventlet.event import Event

from kit.mongo import Store
from metrics.service import MetricsService
from metrics.store import MetricsStore
from tests.integration.metrics import metrics_script as script
from tests.integration.metrics.test_metrics_projections import KPIS, kpis, wait_for

# one batch handler per producer, and as many workers: all of them hold a batch
HANDLERS = 4


class GatedStore(MetricsStore):
    """Holds each batch on `gate` (when set), before or after its writes. Only the first
    HANDLERS batches may be held after their writes: a later one (a handler hands its next
    batch over while one is held, and it starts once the kill frees a worker) waits before
    writing, so nothing is half written when the container dies."""

    gate = None
    written_first = False
    begun = 0
    batches = 0
    held = []  # the types of the events of the first HANDLERS batches

    def apply_batch(self, events, written=None, writer=""):
        cls = type(self)
        gate = cls.gate
        if gate is None:
            return super().apply_batch(events, written, writer)
        first = cls.begun < HANDLERS
        cls.begun += 1
        out = (super().apply_batch(events, written, writer) if cls.written_first and first
               else None)
        if first:
            cls.held.extend(e["type"] for e in events)
        cls.batches += 1  # once written: a kill now leaves nothing half written
        gate.wait()
        return (out if cls.written_first and first
                else super().apply_batch(events, written, writer))


class GatedMetrics(MetricsService):
    store = Store(GatedStore)


@pytest.fixture(params=["before", "after"])
def gate(request, monkeypatch):
    monkeypatch.setattr(GatedStore, "gate", Event())
    monkeypatch.setattr(GatedStore, "held", [])
    monkeypatch.setattr(GatedStore, "batches", 0)
    monkeypatch.setattr(GatedStore, "begun", 0)
    monkeypatch.setattr(GatedStore, "written_first", request.param == "after")
    return GatedStore


def counts(got, name):
    return {dict(labels)["type"]: v for (n, labels), v in got.items() if n == name and v}


def test_a_kill_before_batches_are_acked_loses_nothing_and_applies_nothing_twice(
        container_factory, make_config, api, publish, gate):
    events = script.build()
    order, dups = script.deliveries(events)
    config = make_config("metrics", KPIS=KPIS)
    killed = container_factory(GatedMetrics, config)
    killed.start()
    publish(order)
    assert wait_for(lambda: gate.batches == HANDLERS)
    killed.kill()

    gate.gate = None
    # on a port of its own: the killed container's listener may linger
    config = dict(config, WEB_SERVER_ADDRESS=make_config("metrics")["WEB_SERVER_ADDRESS"])
    container = container_factory(MetricsService, config)
    container.start()
    client = api(config)

    # a redelivered event of a batch written before the kill counts as a duplicate delivery
    duplicates = dict(dups)
    if gate.written_first:
        for etype in gate.held:
            duplicates[etype] = duplicates.get(etype, 0) + 1
    want = (script.counts_by_type(events), duplicates)

    def settled():
        got = kpis(client)
        return (counts(got, "dealflow_events_applied_total"),
                counts(got, "dealflow_events_duplicate_total")) == want and got

    got = wait_for(settled)
    assert got, kpis(client)
    assert script.mismatches(got, events, duplicates) == []
