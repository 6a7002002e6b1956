"""The outbox relay's publisher on a RabbitMQ cluster: when the node leading a quorum queue
dies, the broker nacks what a channel sends to that queue until a new leader is elected —
and a RabbitMQ 3.10 channel that got such a nack keeps getting them after the election.
The publisher drops a nacked channel, so the next batch reaches the new leader."""
import pytest
from kombu import Connection

from kit.amqp import ConfirmingPublisher, PublishError, queue_depths
from tests.support.wait import wait_for

QUEUE = "cluster-publisher"


def declare_quorum_queue(node_uri):
    with Connection(node_uri) as conn:
        conn.default_channel.queue_declare(QUEUE, durable=True, auto_delete=False,
                                           arguments={"x-queue-type": "quorum"})


@pytest.mark.timeout(600)  # the session's cluster start counts here when this runs first
def test_publishing_reaches_a_quorum_queue_again_after_its_leader_died(rabbit_cluster,
                                                                        cluster_vhost):
    c1, c2, _ = rabbit_cluster.uri(cluster_vhost).split(";")
    declare_quorum_queue(c1)  # led by c1, the node it was declared on
    rabbit_cluster.kill("c1")
    # as the relay does when its node died: straight to the next node, a channel opened
    # before the queue has a new leader
    publisher = ConfirmingPublisher(c2, confirm_timeout=5)
    try:
        def published():
            try:
                publisher.publish_batch([("", QUEUE, {"id": "after"}, {})])
            except PublishError:
                return False
            return True

        assert wait_for(published, timeout=30, interval=0.5), "nacked ever after"
    finally:
        publisher.close()
    assert queue_depths(c2, [QUEUE]) == {QUEUE: 1}, "there, once"
