"""AMQP_QUEUE_TYPE=quorum (a RabbitMQ cluster): a handler's queue, its retry queues and its
dead-letter queue are all quorum queues, dead-lettering at least once, and the retry path
(TTL expiry back into the queue) and the dead-letter path work on them as on classic
queues. Quorum queues run on one node too, so this runs on the shared node."""
from kit.amqp import queue_depths
from tests.integration import test_kit_consumer as consumer_tests
from tests.support.wait import wait_for

QUEUE, lead_created = consumer_tests.QUEUE, consumer_tests.lead_created
tally, publish = consumer_tests.tally, consumer_tests.publish  # the same fixtures
RETRIES = [f"{QUEUE}.retry.{n}" for n in (1, 2, 3)]


def test_every_queue_of_a_handler_is_a_quorum_queue_dead_lettering_at_least_once(
        tally, rabbit_config, rabbit_manager):
    tally(AMQP_QUEUES={"type": "quorum"}, CONSUMER={"max_retries": 3})
    arguments = {q["name"]: q["arguments"]
                 for q in rabbit_manager.get_queues(rabbit_config["vhost"])}
    for name in (QUEUE, *RETRIES, QUEUE + ".dlq"):
        assert arguments[name]["x-queue-type"] == "quorum", name
        assert arguments[name]["x-dead-letter-strategy"] == "at-least-once", name
        assert arguments[name]["x-overflow"] == "reject-publish", name
    assert arguments[QUEUE]["x-dead-letter-routing-key"] == RETRIES[0]
    assert {arguments[name]["x-dead-letter-routing-key"] for name in RETRIES} == {QUEUE}


def test_on_quorum_queues_a_failing_handler_is_retried_then_dead_lettered(
        tally, publish, rabbit_config):
    _, store, _ = tally(fail_times=10_000, AMQP_QUEUES={"type": "quorum"},
                        CONSUMER={"max_retries": 3})
    event = lead_created()
    publish(event)
    uri = rabbit_config["AMQP_URI"]
    assert wait_for(lambda: queue_depths(uri, [QUEUE + ".dlq"])[QUEUE + ".dlq"] == 1)
    assert store.attempts(event["id"]) == 4  # the first delivery and 3 retries
    assert queue_depths(uri, [QUEUE, *RETRIES]) == dict.fromkeys([QUEUE, *RETRIES], 0)


def test_on_quorum_queues_a_transient_failure_is_retried_and_applied_once(
        tally, publish, rabbit_config):
    _, store, _ = tally(fail_times=2, AMQP_QUEUES={"type": "quorum"},
                        CONSUMER={"max_retries": 3})
    event = lead_created()
    publish(event, event)
    assert wait_for(lambda: store.tally() == 1 and store.attempts(event["id"]) >= 4)
    assert store.tally() == 1
