"""Reliable consumption: duplicates change nothing, transient failures retry a bounded
number of times and then dead-letter (visible in /metrics); malformed or undecodable
messages, permanent failures and replays that fail again dead-letter at once."""
import json
import pickle

import eventlet
import pika
import pytest
from kombu import Connection
from marshmallow import ValidationError
from pymongo.errors import AutoReconnect

from kit.amqp import CLOUDEVENTS_JSON, ConfirmingPublisher, queue_depths
from kit.consumer import event_handler
from kit.errors import Conflict, NotFound, Retryable, Unavailable
from kit.events import new_event
from kit.fields import utcnow
from tests.support.things import TallyService
from tests.support.wait import wait_for

QUEUE = "evt-leads-lead.created--tally.handle_leads_lead_created"
DLQ = QUEUE + ".dlq"


class FailingTally(TallyService):
    """Tally whose induced failures are of the type a test names."""

    failure = RuntimeError

    @event_handler("leads", "lead.created")
    def handle_leads_lead_created(self, event):
        try:
            self.store.count(event, self.fail_times)
        except RuntimeError as exc:
            raise self.failure(str(exc)) from exc




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
    def start(fail_times=0, base=TallyService, failure=None, **config_overrides):
        attrs = {"fail_times": fail_times}
        if failure is not None:
            attrs["failure"] = staticmethod(failure)
        service = type("Tally", (base,), attrs)
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


def pika_channel(amqp_uri):
    conn = Connection(amqp_uri)
    connection = pika.BlockingConnection(pika.ConnectionParameters(
        host=conn.hostname, port=conn.port or 5672, virtual_host=conn.virtual_host,
        credentials=pika.PlainCredentials(conn.userid, conn.password)))
    return connection, connection.channel()


def send_raw(amqp_uri, body, content_type, queue=QUEUE):
    connection, channel = pika_channel(amqp_uri)
    channel.confirm_delivery()
    channel.basic_publish("", queue, body, pika.BasicProperties(
        content_type=content_type, delivery_mode=2))
    connection.close()


def dead_letters(amqp_uri, queue=DLQ):
    """Every message in the dead-letter queue: (properties, body), left in place."""
    connection, channel = pika_channel(amqp_uri)
    got = []
    while (message := channel.basic_get(queue))[0] is not None:
        got.append(message[1:])
    connection.close()  # unacked: they go back to the queue
    return got


def dlq_depth(uri):
    return queue_depths(uri, [DLQ])[DLQ]


@pytest.mark.parametrize("body, content_type", [
    (b"not json", "application/json"),
    (b"not json", CLOUDEVENTS_JSON),
    (b'{"specversion": "1.0"}', "text/plain"),
    (pickle.dumps({"specversion": "1.0"}), "application/x-python-serialize"),
    (b"\xff\xfe", None),
])
def test_an_undecodable_message_is_dead_lettered_with_its_reason_and_consuming_goes_on(
        tally, publish, rabbit_config, body, content_type):
    _, store, _ = tally()
    uri = rabbit_config["AMQP_URI"]
    send_raw(uri, body, content_type)
    assert wait_for(lambda: dlq_depth(uri) == 1)
    [(props, dead)] = dead_letters(uri)
    assert dead == body and props.content_type == content_type
    assert "undecodable" in props.headers["x-dealflow-error"]
    assert props.headers["x-dealflow-queue"] == QUEUE

    event = lead_created()
    publish(event)
    assert wait_for(lambda: store.tally() == 1)
    assert dlq_depth(uri) == 1


@pytest.mark.parametrize("body", [b"[]", b'"lead.created"', b"null", b"", b"{}"])
def test_json_that_is_no_event_is_dead_lettered_as_malformed(tally, publish, rabbit_config,
                                                              body):
    _, store, _ = tally()
    uri = rabbit_config["AMQP_URI"]
    send_raw(uri, body, CLOUDEVENTS_JSON)
    assert wait_for(lambda: dlq_depth(uri) == 1)
    [(props, dead)] = dead_letters(uri)
    assert dead == body and props.headers["x-dealflow-error"].startswith("malformed event")
    publish(lead_created())
    assert wait_for(lambda: store.tally() == 1)


@pytest.mark.parametrize("content_type", ["application/json", CLOUDEVENTS_JSON])
def test_structured_cloudevents_and_plain_json_are_both_consumed(tally, rabbit_config,
                                                                  content_type):
    _, store, _ = tally()
    send_raw(rabbit_config["AMQP_URI"], json.dumps(lead_created()).encode(), content_type)
    assert wait_for(lambda: store.tally() == 1)


def test_events_are_published_as_structured_cloudevents(tally, publish, rabbit_config):
    tally(fail_times=10_000, CONSUMER={"max_retries": 0})
    publish(lead_created())
    uri = rabbit_config["AMQP_URI"]
    assert wait_for(lambda: dlq_depth(uri) == 1)
    [(props, _)] = dead_letters(uri)
    assert props.content_type == CLOUDEVENTS_JSON


def validation_error(message):
    return ValidationError({"data": [message]})


@pytest.mark.parametrize("failure", [Conflict, NotFound, validation_error])
def test_a_permanent_failure_is_dead_lettered_at_once_with_its_reason(
        tally, publish, rabbit_config, failure):
    _, store, _ = tally(fail_times=10_000, base=FailingTally, failure=failure,
                        CONSUMER={"max_retries": 3})
    event = lead_created()
    publish(event)
    uri = rabbit_config["AMQP_URI"]
    assert wait_for(lambda: dlq_depth(uri) == 1)
    [(props, _)] = dead_letters(uri)
    assert props.headers["x-dealflow-error"].startswith("permanent failure: ")
    assert "induced failure 1" in props.headers["x-dealflow-error"]
    eventlet.sleep(0.5)  # and no retry comes after it
    assert store.attempts(event["id"]) == 1


def auto_reconnect(message):
    return AutoReconnect(message)


@pytest.mark.parametrize("failure", [RuntimeError, Unavailable, Retryable, auto_reconnect])
def test_a_transient_failure_goes_through_the_retries(tally, publish, rabbit_config, failure):
    _, store, _ = tally(fail_times=2, base=FailingTally, failure=failure,
                        CONSUMER={"max_retries": 3})
    event = lead_created()
    publish(event)
    assert wait_for(lambda: store.tally() == 1)
    assert store.attempts(event["id"]) == 3
    assert dlq_depth(rabbit_config["AMQP_URI"]) == 0


def test_a_handler_declares_its_own_permanent_failures(tally, publish, rabbit_config):
    class LookupIsPermanentTally(FailingTally):
        failure = LookupError

        @event_handler("leads", "lead.created", permanent=(LookupError,))
        def handle_leads_lead_created(self, event):
            FailingTally.handle_leads_lead_created(self, event)

    _, store, _ = tally(fail_times=10_000, base=LookupIsPermanentTally,
                        CONSUMER={"max_retries": 3})
    event = lead_created()
    publish(event)
    assert wait_for(lambda: dlq_depth(rabbit_config["AMQP_URI"]) == 1)
    eventlet.sleep(0.5)
    assert store.attempts(event["id"]) == 1


def test_a_replayed_dead_letter_that_fails_again_is_dead_lettered_again_at_once(
        tally, publish, rabbit_config):
    from kit.deadletters import replay

    _, store, _ = tally(fail_times=10_000, CONSUMER={"max_retries": 1})
    event = lead_created()
    publish(event)
    uri = rabbit_config["AMQP_URI"]
    assert wait_for(lambda: dlq_depth(uri) == 1)
    assert store.attempts(event["id"]) == 2

    assert replay(uri, QUEUE) == 1
    assert wait_for(lambda: store.attempts(event["id"]) == 3 and dlq_depth(uri) == 1)
    eventlet.sleep(0.5)  # no retry round, no second replay
    assert store.attempts(event["id"]) == 3
    [(props, body)] = dead_letters(uri)
    assert props.headers["x-dealflow-error"].startswith("failed again after replay: ")
    assert json.loads(body)["id"] == event["id"]


def test_a_replayed_undecodable_message_goes_back_to_the_dead_letter_queue(
        tally, rabbit_config):
    from kit.deadletters import replay

    tally()
    uri = rabbit_config["AMQP_URI"]
    send_raw(uri, b"not json", "application/json")
    assert wait_for(lambda: dlq_depth(uri) == 1)
    assert replay(uri, QUEUE) == 1
    assert wait_for(lambda: dlq_depth(uri) == 1
                    and dead_letters(uri)[0][0].headers.get("x-dealflow-replayed"))
    [(props, body)] = dead_letters(uri)
    assert body == b"not json" and "undecodable" in props.headers["x-dealflow-error"]


def test_concurrent_failing_workers_each_retry_their_own_message_exactly_once(
        tally, publish, rabbit_config, caplog):
    _, store, _ = tally(fail_times=1, max_workers=10, CONSUMER={"max_retries": 3})
    events = [lead_created(f"n{i}") for i in range(50)]
    publish(*events)
    assert wait_for(lambda: store.tally() == 50, timeout=30)
    assert [store.attempts(e["id"]) for e in events] == [2] * 50
    assert dlq_depth(rabbit_config["AMQP_URI"]) == 0
    # every retry was scheduled by its own worker, none fell back to a broker reject
    assert "rejecting instead" not in caplog.text
