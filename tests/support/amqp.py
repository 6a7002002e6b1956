"""Plain AMQP helpers for tests: bind a queue like an outside subscriber would, publish
events as their producers do, list the services' consumer queues and poison them."""
from urllib.parse import quote

import requests
from kombu import Connection, Exchange, Queue

from kit.amqp import CLOUDEVENTS_JSON, ConfirmingPublisher


def distinct(events):
    """One copy of each event id, in arrival order (delivery is at least once)."""
    return list({event["id"]: event for event in events}.values())


def publish(amqp_uri, *events, on_declare=None):
    """Publish catalog events the way their producers' outbox relays do: to exchange
    `<service>.events` (the service named by the event's source), routed by type, with
    `on_declare` (kit.streams.stream_declarer) where the test reads the streams too."""
    publisher = ConfirmingPublisher(amqp_uri, on_declare=on_declare)
    try:
        publisher.publish_batch([
            (f"{e['source'].rsplit('/', 1)[-1]}.events", e["type"], e, {"ce-id": e["id"]})
            for e in events])
    finally:
        publisher.close()


def consumer_queues(api_uri, vhost):
    """The event handlers' queues of `vhost` (not their retry and dead-letter queues), read
    through the management API at `api_uri`."""
    resp = requests.get(f"{api_uri}/api/queues/{quote(vhost, safe='')}",
                        params={"columns": "name"}, timeout=10)
    resp.raise_for_status()
    return sorted(q["name"] for q in resp.json() if q["name"].startswith("evt-")
                  and ".retry." not in q["name"] and not q["name"].endswith(".dlq"))


def poison(amqp_uri, queues):
    """Two messages no handler can apply on each queue: a catalog type's envelope without
    its data, and bytes that are no JSON."""
    with Connection(amqp_uri) as conn:
        producer = conn.Producer()
        for queue in queues:
            producer.publish(b'{"specversion": "1.0", "type": "poison", "id": "p"}',
                             routing_key=queue, exchange="", serializer=None,
                             content_type=CLOUDEVENTS_JSON, content_encoding="utf-8")
            producer.publish(b"\xff\xfe{not json", routing_key=queue, exchange="",
                             content_type=CLOUDEVENTS_JSON, content_encoding="binary")


class Subscriber:
    """A durable queue bound to `<service>.events`, read with plain kombu (no nameko)."""

    def __init__(self, amqp_uri, service, routing_key="#", name=None, queue_arguments=None):
        self.conn = Connection(amqp_uri)
        self.exchange = Exchange(f"{service}.events", type="topic", durable=True)
        self.queue = Queue(name or f"test-subscriber-{service}", exchange=self.exchange,
                           routing_key=routing_key, durable=True,
                           queue_arguments=queue_arguments)
        self.queue(self.conn.channel()).declare()

    def drain(self, expect=None, timeout=10.0, distinct=False):
        """Collect messages until `expect` arrived (or `timeout` passed with no new one).

        `distinct` keeps one copy of each event id: delivery is at least once (a relay
        and another instance's sweep may both publish an event before it leaves the
        outbox), so "once" claims are about distinct events, which consumers dedupe."""
        got, seen = [], set()
        # a channel of its own, closed at the end: messages the consumer prefetched but this
        # drain did not take go back to the queue (on a shared channel they stayed unacked
        # and the next drain never saw them)
        channel = self.conn.channel()
        try:
            return self._drain(channel, expect, timeout, distinct, got, seen)
        finally:
            channel.close()

    def _drain(self, channel, expect, timeout, distinct, got, seen):
        with self.conn.SimpleQueue(self.queue, channel=channel) as q:
            while expect is None or len(got) < expect:
                try:
                    msg = q.get(block=True, timeout=timeout)
                except q.Empty:
                    break
                msg.ack()
                event_id = msg.payload.get("id") if isinstance(msg.payload, dict) else None
                if distinct and event_id in seen:
                    continue
                seen.add(event_id)
                got.append(msg.payload)
        return got

    def close(self):
        self.conn.release()
