"""Starting webhooks in-process against the test's vhost and database, with quick timers
and retries, and publishing events the way producers do (exchange and stream)."""
from kit.events import new_event
from kit.fields import utcnow
from kit.streams import stream_declarer
from tests.support import amqp
from tests.support.wait import wait_for
from webhooks.service import WebhooksService

QUICK = {
    "allow": ["127.0.0.1"], "development": True,
    "intake_wait_seconds": 0.05, "intake_retry_seconds": 0.2, "intake_lease_seconds": 5,
    "intake_idle_seconds": 0.2,
    "send_interval_seconds": 0.1,
    "lease_seconds": 10, "redeliver_idle_seconds": 0.5, "redeliver_margin_seconds": 1,
    "retry": {"first_delay_seconds": 0.2, "factor": 1.5, "max_delay_seconds": 1,
              "give_up_after_hours": 24, "disable_after_failures": 50,
              "disable_after_hours": 72},
}


def webhooks_config(make_config, **webhooks):
    config = make_config("webhooks")
    config["WEBHOOKS"] = {**config["WEBHOOKS"], **QUICK, **webhooks}
    return config


def start_webhooks(container_factory, config):
    container = container_factory(WebhooksService, config)
    container.start()
    return container


def subscribe(http, receiver, *types, **fields):
    resp = http.post("/api/v1/subscriptions", json={
        "url": receiver.hook_url, "event_types": list(types or ["lead.assigned"]), **fields})
    assert resp.status_code == 201, resp.text
    receiver.secret = resp.json()["secret"]
    return resp.json()


def assigned(lead_id, seq, owner="ann"):
    return new_event("lead.assigned", lead_id, {"lead_id": lead_id, "owner_id": owner,
                                                "rule": "manual"}, seq)


def updated(lead_id, seq):
    return new_event("lead.updated", lead_id, {"lead_id": lead_id, "changed": ["name"],
                                               "score": 10, "grade": "C"}, seq)


def publish(config, events):
    """As the outbox relay does: to the producer's exchange, and so into its stream."""
    amqp.publish(config["AMQP_URI"], *events, on_declare=stream_declarer(config))


def received_ids(receiver):
    return [event["id"] for _, event in receiver.received]


def wait_received(receiver, ids, timeout=60):
    return wait_for(lambda: set(ids) <= set(received_ids(receiver)), timeout)


def now():
    return utcnow()
