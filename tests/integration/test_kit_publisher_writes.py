"""Socket writes and reads of the kit's AMQP connections, on a real RabbitMQ: a batch's frames
go out in a few large writes instead of one per message, and arrive whole and in order; a
batch that fails half way leaves nothing behind for the next one; a reading connection
takes many frames per system call."""
import pytest
from kombu import Connection, Consumer

from kit.amqp import ConfirmingPublisher, PublishError, read_ahead
from tests.support.amqp import Subscriber

SERVICE = "leads"  # any producer's exchange: the subscriber binds to `leads.events`


def message(n, size=900):
    return (f"{SERVICE}.events", "lead.created",
            {"id": f"ev-{n}", "n": n, "name": "王秀英 Müller", "pad": "x" * size},
            {"ce-id": f"ev-{n}"})


class CountingWrites:
    """Counts the socket writes of a publisher's connection (py-amqp's transport writes
    every frame through `_write`, the socket's sendall)."""

    def __init__(self, publisher):
        self.transport = publisher._conn.connection.transport
        self.real = self.transport._write
        self.calls = 0
        self.transport._write = self

    def __call__(self, data):
        self.calls += 1
        return self.real(data)


@pytest.fixture
def subscriber(rabbit_config):
    sub = Subscriber(rabbit_config["AMQP_URI"], SERVICE, name="test-publisher-writes")
    yield sub
    sub.conn.close()


@pytest.fixture
def publisher(rabbit_config):
    publisher = ConfirmingPublisher(rabbit_config["AMQP_URI"], )
    yield publisher
    publisher.close()


def test_a_batch_goes_out_in_a_few_writes_and_arrives_whole_and_in_order(publisher,
                                                                          subscriber):
    publisher.publish_batch([message(0)])  # connects and declares the exchange
    writes = CountingWrites(publisher)
    # 300 messages of ~1 KB, and one larger than a frame (py-amqp splits its body)
    batch = [message(n) for n in range(1, 301)] + [message(301, size=300_000)]
    publisher.publish_batch(batch)

    # ~610 KB held in 64 KB writes: about ten, where each message once made one or more
    assert writes.calls <= 15, writes.calls
    got = subscriber.drain(expect=302, timeout=10)
    assert [e["n"] for e in got] == list(range(302))
    assert got[-1] == batch[-1][2] and got[150] == batch[149][2]


def test_a_batch_that_fails_half_way_leaves_nothing_for_the_next(publisher, subscriber,
                                                                 monkeypatch):
    publisher.publish_batch([message(0)])
    channel = publisher._channel
    real, sent = channel.basic_publish, []

    def fails_at_the_fifth(msg, **kwargs):
        if len(sent) == 4:
            raise ConnectionError("connection reset by peer")
        sent.append(msg)
        return real(msg, **kwargs)

    monkeypatch.setattr(channel, "basic_publish", fails_at_the_fifth)
    with pytest.raises(PublishError):
        publisher.publish_batch([message(n) for n in range(1, 10)])

    publisher.publish_batch([message(n) for n in range(10, 13)])  # a fresh connection
    assert publisher._channel is not channel
    # the four frames the failed batch held never went out, on either connection
    assert [e["n"] for e in subscriber.drain(timeout=2)] == [0, 10, 11, 12]


def test_a_connection_reads_many_frames_per_system_call(publisher, subscriber,
                                                        rabbit_config):
    batch = [message(n) for n in range(300)] + [message(300, size=300_000)]
    publisher.publish_batch(batch)
    with Connection(rabbit_config["AMQP_URI"]) as conn:
        conn.connect()
        transport = conn.connection.transport
        real, calls = transport._quick_recv, []

        def recv(size):
            calls.append(size)
            return real(size)

        transport._quick_recv = recv
        read_ahead(transport)
        got = []

        def take(body, msg):
            got.append(body)
            msg.ack()

        with Consumer(conn.channel(), [subscriber.queue], callbacks=[take],
                      accept=["json", "application/cloudevents+json"]):
            while len(got) < 301:
                conn.drain_events(timeout=5)

    assert [e["n"] for e in got] == list(range(301))
    assert got[-1] == batch[-1][2] and got[7] == batch[7][2]
    # ~1 KB messages, three frames each: py-amqp alone made two calls per frame
    assert len(calls) < 300, len(calls)
