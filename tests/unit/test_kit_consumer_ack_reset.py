"""kit.consumer's queue consumer when the socket dies between a handler's write and its ack
(seen when a cluster node was killed mid-flow): the ack's socket error is absorbed, since
the broker takes the unacked message back and handlers write keyed by event id; nameko
alone caught amqp's ConnectionError only, so the error killed the container."""
import pytest

from kit.consumer import ReliableQueueConsumer


class _Channel:
    connection = object()  # alive, as far as the consumer can tell


class _ResetMessage:
    channel = _Channel()

    def ack(self, multiple=False):
        raise ConnectionResetError(104, "Connection reset by peer")

    def requeue(self):
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("method", ["ack_message", "requeue_message"])
def test_a_socket_error_on_ack_or_requeue_does_not_escape(method):
    getattr(ReliableQueueConsumer(), method)(_ResetMessage())
