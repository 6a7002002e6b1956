"""Reliable consumption: duplicates change nothing, failures retry a bounded number of
times and then dead-letter (visible in /metrics), malformed events dead-letter at once."""

import eventlet
import pytest

from kit.amqp import ConfirmingPublisher, queue_depths
from kit.events import new_event
from kit.fields import utcnow
from tests.support.things import TallyService
from tests.support.wait import wait_for

QUEUE = "evt-leads-lead.created--tally.handle_leads_lead_created"



def lead_created(name="x"):
    return new_event("lead.created", "lead-1", {
        "lead_id": "lead-1", "name": name, "source": "api", "score": 0, "grade": "D",
        "created_at": utcnow()}, 1)


@pytest.fixture
def publish(rabbit_config):
    publisher = ConfirmingPublisher(rabbit_config["AMQP_URI"])

    def send(*bodies):
        publisher.publish_batch([("leads.events", "lead.created", b, {}) for b in bodies])

    yield send
    publisher.close()


@pytest.fixture
def tally(container_factory, make_config):
    def start(fail_times=0, **config_overrides):
        service = type("Tally", (TallyService,), {"fail_times": fail_times})
        config = make_config("metrics", **config_overrides)
        container = container_factory(service, config)
        container.start()
        store = next(d for d in container.dependencies if d.attr_name == "store").store
        return container, store, config
    return start


def test_the_same_event_twice_changes_state_once(tally, publish):
    _, store, _ = tally()
    event = lead_created()
    publish(event, event)
    assert wait_for(lambda: store.attempts(event["id"]) == 2 and store.tally() == 1)
    eventlet.sleep(0.3)
    assert store.tally() == 1
    other = lead_created("y")
    publish(other)
    assert wait_for(lambda: store.tally() == 2)


def test_a_transient_failure_is_retried_and_then_applied(tally, publish, rabbit_config):
    _, store, _ = tally(fail_times=2, CONSUMER={"max_retries": 3})
    event = lead_created()
    publish(event)
    assert wait_for(lambda: store.tally() == 1)
    assert store.attempts(event["id"]) == 3
    assert queue_depths(rabbit_config["AMQP_URI"], [QUEUE + ".dlq"])[QUEUE + ".dlq"] == 0


def test_a_handler_that_keeps_failing_is_dead_lettered_after_bounded_retries(
        tally, publish, rabbit_config, api):
    _, store, config = tally(fail_times=10_000, CONSUMER={"max_retries": 3})
    event = lead_created()
    publish(event)
    uri = rabbit_config["AMQP_URI"]
    assert wait_for(lambda: queue_depths(uri, [QUEUE + ".dlq"])[QUEUE + ".dlq"] == 1)
    eventlet.sleep(0.5)  # no further redelivery after dead-lettering
    assert store.attempts(event["id"]) == 4  # the first delivery and 3 retries
    assert store.tally() == 0
    retries = [f"{QUEUE}.retry.{n}" for n in (1, 2, 3)]
    depths = queue_depths(uri, [QUEUE, *retries, QUEUE + ".dlq"])
    assert depths == {QUEUE: 0, **dict.fromkeys(retries, 0), QUEUE + ".dlq": 1}

    metrics = api(config).get("/metrics").text
    assert f'dealflow_dead_letter_messages{{queue="{QUEUE}.dlq"}} 1.0' in metrics


def test_a_malformed_event_is_dead_lettered_at_once(tally, publish, rabbit_config):
    _, store, _ = tally()
    bad = lead_created()
    bad["data"]["grade"] = "Z"
    publish(bad)
    uri = rabbit_config["AMQP_URI"]
    assert wait_for(lambda: queue_depths(uri, [QUEUE + ".dlq"])[QUEUE + ".dlq"] == 1)
    assert store.attempts(bad["id"]) == 0


def test_dead_letters_are_replayed_once_the_cause_is_fixed(tally, publish, rabbit_config):
    from kit.deadletters import replay

    container, store, _ = tally(fail_times=10_000, CONSUMER={"max_retries": 1})
    event = lead_created()
    publish(event)
    uri = rabbit_config["AMQP_URI"]
    assert wait_for(lambda: queue_depths(uri, [QUEUE + ".dlq"])[QUEUE + ".dlq"] == 1)
    assert store.tally() == 0
    container.stop()

    _, fixed, _ = tally(fail_times=0)  # the same queue, now with a handler that works
    assert replay(uri, QUEUE) == 1
    assert wait_for(lambda: fixed.tally() == 1)
    assert queue_depths(uri, [QUEUE + ".dlq"])[QUEUE + ".dlq"] == 0


def test_retries_wait_longer_each_time_and_are_counted(tally, publish, rabbit_config):
    from kombu import Connection, Queue

    _, store, _ = tally(fail_times=10_000, CONSUMER={"retry_delays_ms": [100, 60_000]})
    event = lead_created()
    publish(event)
    # the first retry comes back after 100 ms; the second waits in the 60 s queue
    assert wait_for(lambda: store.attempts(event["id"]) == 2)
    uri = rabbit_config["AMQP_URI"]
    assert wait_for(lambda: queue_depths(uri, [QUEUE + ".retry.2"])[QUEUE + ".retry.2"] == 1)
    with Connection(uri) as conn:
        waiting = Queue(QUEUE + ".retry.2", no_declare=True)(conn.channel()).get(no_ack=False)
        assert waiting.headers["x-dealflow-retries"] == 2
        assert waiting.payload["id"] == event["id"]
        waiting.requeue()
    assert store.attempts(event["id"]) == 2
