"""A metrics instance says it is ready only once its KPIs are restored (a snapshot and
what changed since, or every projection): before that its exposition has no KPIs, and a
load balancer must not send it the scrapes and funnels of a ready instance."""
from eventlet.event import Event

from metrics.live import LiveKpis
from metrics.service import MetricsService
from tests.support.wait import wait_for


def test_not_ready_until_the_kpis_are_restored(monkeypatch, container_factory, make_config,
                                                api):
    restore, gate = LiveKpis._restore, Event()

    def held(live):
        gate.wait()
        return restore(live)

    monkeypatch.setattr(LiveKpis, "_restore", held)
    config = make_config("metrics")
    container_factory(MetricsService, config).start()
    client = api(config)
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["checks"] == {"mongodb": "ok", "indexes": "ok", "kpis": "pending",
                                     "amqp": "ok"}
    assert "dealflow_metrics_projections_loaded 0.0" in client.get("/metrics").text
    gate.send()
    assert wait_for(lambda: client.get("/readyz").status_code == 200)
    assert "dealflow_metrics_projections_loaded 1.0" in client.get("/metrics").text
