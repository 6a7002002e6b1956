"""Which refusals of a stream consumer are the broker still starting the stream (tried
again, briefly) and which are real (raised at once)."""
import amqp
import pytest

from webhooks.streamreader import starting


@pytest.mark.parametrize("exc, again", [
    (amqp.exceptions.InternalError("stream not available"), True),  # 541, RabbitMQ 3.10
    (amqp.exceptions.PreconditionFailed(
        "PRECONDITION_FAILED - stream queue 'webhooks.events.stream' in vhost 't' does not "
        "have a replica on the local node"), True),
    (amqp.exceptions.PreconditionFailed(
        "PRECONDITION_FAILED - invalid arg 'x-stream-offset'"), False),
])
def test_a_starting_stream_is_tried_again_other_refusals_are_not(exc, again):
    assert starting(exc) is again
