"""The producers' streams on metrics' /metrics (real RabbitMQ): length from the management
API, ages of the oldest and newest event kept; a stream not declared yet says so."""
import datetime as dt

from prometheus_client.parser import text_string_to_metric_families

from kit.catalog import PRODUCER
from kit.fields import utcnow
from metrics.service import MetricsService
from tests.integration.metrics import metrics_script as script
from tests.integration.metrics.test_metrics_projections import wait_for
from tests.integration.metrics.test_metrics_rebuild import logged  # noqa: F401


def stream_figures(client):
    out = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name.startswith("dealflow_stream_"):
                out[(sample.name, sample.labels["stream"])] = sample.value
    return out


def test_stream_length_and_ages(container_factory, make_config, api, logged):  # noqa: F811
    events = [e for e in script.build() if PRODUCER[e["type"]] in ("leads", "deals")]
    logged(events)
    config = make_config("metrics", STREAM_STATS={"refresh_seconds": 0.2})
    container = container_factory(MetricsService, config)
    container.start()
    client = api(config)
    leads = [e for e in events if PRODUCER[e["type"]] == "leads"]
    deals = len(events) - len(leads)
    # (the management API counts with its stats interval, a few seconds behind)
    assert wait_for(lambda: (f := stream_figures(client)).get(
        ("dealflow_stream_messages", "leads.events.stream")) == len(leads)
        and f.get(("dealflow_stream_messages", "deals.events.stream")) == deals), \
        stream_figures(client)

    before = utcnow()
    got = stream_figures(client)
    after = utcnow()
    first, last = (dt.datetime.fromisoformat(leads[i]["time"]) for i in (0, -1))
    oldest = got[("dealflow_stream_oldest_age_seconds", "leads.events.stream")]
    newest = got[("dealflow_stream_newest_age_seconds", "leads.events.stream")]
    assert (before - first).total_seconds() <= oldest <= (after - first).total_seconds()
    assert (before - last).total_seconds() <= newest <= (after - last).total_seconds()
    assert got[("dealflow_stream_messages", "deals.events.stream")] == deals
    # quotes and support published nothing here: their streams do not exist yet
    for stream in ("quotes.events.stream", "support.events.stream"):
        assert got[("dealflow_stream_exists", stream)] == 0
        assert got[("dealflow_stream_messages", stream)] == 0
        assert ("dealflow_stream_oldest_age_seconds", stream) not in got
    assert got[("dealflow_stream_exists", "leads.events.stream")] == 1
    assert got[("dealflow_stream_max_age_seconds", "leads.events.stream")] == 90 * 86400
