"""Plain AMQP helpers for tests: bind a queue like an outside subscriber would."""
from kombu import Connection, Exchange, Queue


class Subscriber:
    """A durable queue bound to `<service>.events`, read with plain kombu (no nameko)."""

    def __init__(self, amqp_uri, service, routing_key="#", name=None):
        self.conn = Connection(amqp_uri)
        self.exchange = Exchange(f"{service}.events", type="topic", durable=True)
        self.queue = Queue(name or f"test-subscriber-{service}", exchange=self.exchange,
                           routing_key=routing_key, durable=True)
        self.queue(self.conn.channel()).declare()

    def drain(self, expect=None, timeout=10.0):
        """Collect messages until `expect` arrived (or `timeout` passed with no new one)."""
        got = []
        with self.conn.SimpleQueue(self.queue) as q:
            while expect is None or len(got) < expect:
                try:
                    msg = q.get(block=True, timeout=timeout)
                except q.Empty:
                    break
                got.append(msg.payload)
                msg.ack()
        return got

    def close(self):
        self.conn.release()
