"""Least privilege on the broker (real RabbitMQ): each service's user, with the permissions
deploy/rabbitmq/access.py grants, can do what its service does and nothing of the others'.
Users are named per test (users are broker-wide) and removed afterwards."""
import datetime as dt
import importlib.util
import secrets
import uuid
from pathlib import Path
from urllib.parse import urlparse

import amqp
import pytest
from kombu import Connection, Exchange

from kit.amqp import ConfirmingPublisher
from kit.consumer import event_handler
from kit.errors import Retryable
from kit.events import new_event
from kit.streams import stream_declarer
from tests.integration.deals.deals_support import start_deals
from tests.support.amqp import Subscriber
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
_spec = importlib.util.spec_from_file_location("access", ROOT / "deploy/rabbitmq/access.py")
access = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(access)


@pytest.fixture
def users(request, rabbit_config):
    """{service: AMQP URI of its own user on this test's vhost}."""
    api = urlparse(request.config.getoption("RABBIT_API_URI"))
    management = access.Management(f"{api.scheme}://{api.hostname}:{api.port}",
                                   api.username, api.password)
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    passwords = {s: secrets.token_urlsafe(16) for s in ("leads", "deals", "metrics",
                                                           "webhooks")}
    access.apply(management, rabbit_config["vhost"], passwords,
                 user_of=lambda service: prefix + service)
    amqp_uri = urlparse(rabbit_config["AMQP_URI"])
    yield {s: f"{amqp_uri.scheme}://{prefix}{s}:{p}@{amqp_uri.hostname}:{amqp_uri.port}"
              f"/{rabbit_config['vhost']}" for s, p in passwords.items()}
    for service in passwords:
        management.delete_user(prefix + service)


def publish(uri, exchange, routing_key):
    """Publish one persistent message and wait for its confirm (a refusal closes the
    channel instead, which raises here)."""
    with Connection(uri, transport_options={"confirm_publish": True}) as conn:
        conn.channel().basic_publish(amqp.Message(b"{}", delivery_mode=2),
                                     exchange=exchange, routing_key=routing_key)


def declare_exchange(uri, name):
    with Connection(uri) as conn:
        Exchange(name, type="topic", durable=True)(conn.channel()).declare()


def test_the_leads_user_publishes_leads_events_only(users, rabbit_config):
    declare_exchange(rabbit_config["AMQP_URI"], "deals.events")  # exists: refusal is access
    declare_exchange(users["leads"], "leads.events")
    publish(users["leads"], "leads.events", "lead.created")
    with pytest.raises(amqp.exceptions.AccessRefused):
        publish(users["leads"], "deals.events", "deal.won")
    with pytest.raises(amqp.exceptions.AccessRefused):
        declare_exchange(users["leads"], "deals.events")


def test_a_consumer_cannot_publish_to_what_it_reads(users, rabbit_config):
    declare_exchange(rabbit_config["AMQP_URI"], "leads.events")
    with pytest.raises(amqp.exceptions.AccessRefused):
        publish(users["deals"], "leads.events", "lead.converted")
    with pytest.raises(amqp.exceptions.AccessRefused):
        publish(users["metrics"], "deals.events", "deal.won")


def test_no_user_reads_another_service_s_queue(users, rabbit_config):
    queue = "evt-leads-lead.converted--deals.handle_leads_lead_converted"
    with Connection(users["deals"]) as conn:
        conn.channel().queue_declare(queue, durable=True)
    with Connection(users["metrics"]) as conn, pytest.raises(amqp.exceptions.AccessRefused):
        conn.channel().basic_get(queue)


class Flaky:
    """A consumer named as deals is: its first attempt fails, the retry succeeds."""

    name = "deals"
    calls = []

    @event_handler("leads", "lead.created")
    def on_created(self, event):
        self.calls.append(event["id"])
        if len(self.calls) == 1:
            raise Retryable("the first attempt fails")


def test_a_failed_event_is_retried_under_the_service_s_own_user(users, container_factory,
                                                                make_config, rabbit_config):
    Flaky.calls = []
    config = make_config("deals", AMQP_URI=users["deals"])
    container_factory(Flaky, config).start()
    event = new_event("lead.created", "l-1", {"lead_id": "l-1", "name": "Ada",
                                              "source": "api", "created_at": NOW,
                                              "score": 0, "grade": "D"}, 1)
    ConfirmingPublisher(rabbit_config["AMQP_URI"]).publish_batch(
        [("leads.events", "lead.created", event, None)])
    assert wait_for(lambda: len(Flaky.calls) == 2), Flaky.calls
    assert Flaky.calls == [event["id"], event["id"]]


def test_services_run_with_their_own_users(users, container_factory, make_config, api,
                                           bearer, rabbit_config):
    """The real services, each on its own user: leads publishes, deals consumes lead
    events and publishes its own."""
    from leads.service import LeadsService

    leads_config = make_config("leads", AMQP_URI=users["leads"], SLA={"response_minutes": 0})
    deals_config = make_config("deals", AMQP_URI=users["deals"])
    container_factory(LeadsService, leads_config).start()
    start_deals(container_factory, deals_config)
    created = Subscriber(rabbit_config["AMQP_URI"], "deals", "deal.created")
    try:
        leads = api(leads_config)
        assert wait_for(lambda: leads.get("/readyz").status_code == 200)
        lead_id = leads.post("/api/v1/leads", json={"name": "Ada", "email": "a@b.org",
                                                    "company": "Engines"}).json()["id"]
        for status in ("contacted", "qualified"):
            assert leads.post(f"/api/v1/leads/{lead_id}/status",
                              json={"status": status}).status_code == 200
        assert leads.post(f"/api/v1/leads/{lead_id}/convert", json={}).status_code == 200
        (deal,) = created.drain(expect=1, timeout=15)
        assert deal["data"]["lead_id"] == lead_id
    finally:
        created.close()


def test_metrics_declares_and_binds_its_queues_with_its_own_user(users, container_factory,
                                                                 make_config, api):
    from metrics.service import MetricsService

    config = make_config("metrics", AMQP_URI=users["metrics"])
    container_factory(MetricsService, config).start()  # declares and binds every queue
    metrics = api(config)
    assert wait_for(lambda: metrics.get("/readyz").status_code == 200)


def test_guest_is_only_for_local_development():
    """Compose and Kubernetes remove guest (access.py --delete-guest); only the local
    script keeps it, for the tests' per-test vhosts."""
    compose = (ROOT / "deploy/docker-compose.yml").read_text(encoding="utf-8")
    k8s = (ROOT / "deploy/k8s/base/access.yaml").read_text(encoding="utf-8")
    assert "--delete-guest" in compose and "--delete-guest" in k8s
    assert "--delete-guest" not in (ROOT / "deploy/local/rabbitmq.sh").read_text()


def test_a_producer_s_user_keeps_its_own_stream_only(users, rabbit_config, make_config):
    """kit.streams: the leads user declares and binds `leads.events.stream` as it publishes,
    and cannot declare another producer's stream."""
    declare = stream_declarer(make_config("leads"))
    ConfirmingPublisher(users["leads"], on_declare=declare).publish_batch(
        [("leads.events", "lead.created", {"id": "1"}, {})])
    got = []
    with Connection(rabbit_config["AMQP_URI"]) as conn:
        channel = conn.channel()
        channel.basic_qos(0, 10, False)
        channel.basic_consume("leads.events.stream", callback=got.append,
                              arguments={"x-stream-offset": "first"})
        conn.drain_events(timeout=5)
    assert [message.body for message in got] == ['{"id":"1"}']
    with Connection(users["leads"]) as conn, pytest.raises(amqp.exceptions.AccessRefused):
        declare(conn, "deals.events")


def test_the_webhooks_user_reads_producers_streams_and_nothing_else(users, make_config):
    """webhooks reads every producer's stream with a plain consumer, and may neither
    publish their events nor read their queues."""
    ConfirmingPublisher(users["leads"], on_declare=stream_declarer(make_config("leads"))) \
        .publish_batch([("leads.events", "lead.created", {"id": "1"}, {})])
    got = []
    with Connection(users["webhooks"]) as conn:
        channel = conn.channel()
        channel.basic_qos(0, 10, False)
        channel.basic_consume("leads.events.stream", callback=got.append,
                              arguments={"x-stream-offset": "first"})
        conn.drain_events(timeout=5)
    assert [message.body for message in got] == ['{"id":"1"}']
    with pytest.raises(amqp.exceptions.AccessRefused):
        publish(users["webhooks"], "leads.events", "lead.created")
    queue = "evt-leads-lead.converted--deals.handle_leads_lead_converted"
    with Connection(users["deals"]) as conn:
        conn.channel().queue_declare(queue, durable=True)
    with Connection(users["webhooks"]) as conn, pytest.raises(amqp.exceptions.AccessRefused):
        conn.channel().basic_get(queue)


def test_metrics_reads_the_producers_logs_to_rebuild_and_no_one_else_does(
        users, rabbit_config, make_config):
    """metrics.rebuild reads `<producer>.events.stream` with the metrics user (a passive
    declare, then a consumer); a producer's user cannot read another's log."""
    from metrics.replay import StreamReader

    ConfirmingPublisher(users["leads"], on_declare=stream_declarer(make_config("leads"))) \
        .publish_batch([("leads.events", "lead.created", {"id": "1"}, {})])
    read = [body for batch in StreamReader(users["metrics"], idle_seconds=0.5)
            .read("leads.events.stream") for _, body in batch]
    assert read == ['{"id":"1"}']
    ConfirmingPublisher(users["deals"], on_declare=stream_declarer(make_config("deals"))) \
        .publish_batch([("deals.events", "deal.created", {"id": "2"}, {})])
    with pytest.raises(amqp.exceptions.AccessRefused):
        list(StreamReader(users["leads"], idle_seconds=0.5).read("deals.events.stream"))
