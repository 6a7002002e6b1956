"""A metrics instance's KPI restore (a snapshot and what changed since, or every
projection) has its own gauge, `dealflow_metrics_projections_loaded`, and its exposition
has no KPIs before it; `/readyz` checks the dependencies only (DESIGN "Readiness": the
funnel reads the projections, so it is right either way). The streams' figures, which
nothing waits for, are looked up only after the restore."""
from eventlet.event import Event

from metrics.live import LiveKpis
from metrics.service import MetricsService
from metrics.streamstats import StreamStats
from tests.support.wait import wait_for


def test_the_restore_has_its_gauge_and_the_stream_figures_wait_for_it(
        monkeypatch, container_factory, make_config, api):
    restore, gate = LiveKpis._restore, Event()
    look_up, looked_up_restored = StreamStats._look_up, []

    def held(live):
        gate.wait()
        return restore(live)

    def noted(stats, stream):
        live = next(d for d in stats.container.dependencies if isinstance(d, LiveKpis))
        looked_up_restored.append(live.restored)
        return look_up(stats, stream)

    monkeypatch.setattr(LiveKpis, "_restore", held)
    monkeypatch.setattr(StreamStats, "_look_up", noted)
    config = make_config("metrics")
    container = container_factory(MetricsService, config)
    container.start()
    client = api(config)
    resp = wait_for(lambda: (r := client.get("/readyz")).status_code == 200 and r)
    assert resp.json()["checks"] == {"mongodb": "ok", "indexes": "ok", "amqp": "ok"}
    assert "dealflow_metrics_projections_loaded 0.0" in client.get("/metrics").text
    gate.send()
    assert wait_for(lambda: "dealflow_metrics_projections_loaded 1.0"
                    in client.get("/metrics").text)
    stats = next(d for d in container.dependencies if isinstance(d, StreamStats))
    assert wait_for(lambda: stats.rounds >= 1)
    assert looked_up_restored and all(looked_up_restored), looked_up_restored
