"""Reading the producers' streams (kit.streams) with a plain AMQP 0-9-1 consumer, as
docs/asyncapi.yaml tells integrators to: a prefetch (a stream refuses a consumer without
one), manual acks (an ack only moves the credit window on), and `x-stream-offset` = an
offset, or a timestamp (RabbitMQ 3.x starts at the chunk holding it: earlier events come
first and are dropped by their `time`)."""
import datetime as dt
import json
import logging

import amqp
import eventlet

from kit.amqp import connect
from kit.outbox import EPOCH

log = logging.getLogger(__name__)
OFFSET = "x-stream-offset"


class StreamMissing(Exception):
    """Its producer never published: the stream is declared with the first event."""


def event_time(event):
    return dt.datetime.fromisoformat(event["time"])


def decoded(message):
    """(the body as text, the event) of a stream message, or (text, None) for a message
    that is no JSON event (logged; a stream cannot dead-letter, and nothing may stop
    behind it)."""
    body = message.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        event = json.loads(body)
        if not isinstance(event, dict) or not {"id", "type", "time", "subject"} <= set(event):
            raise ValueError("not a CloudEvent")
        event_time(event)
    except ValueError as exc:
        log.error("skipping a stream message that is no event (%s): %.200s", exc, body)
        return body, None
    return body, event


def starting(exc):
    """Whether the broker refused a stream consumer only because the stream is starting."""
    return isinstance(exc, amqp.exceptions.InternalError) or "replica" in str(exc)


class Consumer:
    """One stream consumer on a connection of its own; `next_batch()` returns the
    messages that arrived, up to `batch`, waiting at most `wait` seconds for more."""

    # RabbitMQ may refuse a consumer of a stream declared a moment ago: 3.10 with 541, and
    # under load with 406 "does not have a replica on the local node" (its member starts)
    ATTACH_TRIES = 5
    ATTACH_PAUSE = 0.2

    def __init__(self, amqp_uri, stream, start, *, prefetch, connect_timeout=3.0):
        self.stream = stream
        self._buffer = []
        for attempt in range(1, self.ATTACH_TRIES + 1):
            self.conn = connect(amqp_uri, connect_timeout)
            try:
                self.channel = self.conn.channel()
                self.channel.basic_qos(0, prefetch, False)
                self.channel.basic_consume(stream, callback=self._buffer.append,
                                           no_ack=False, arguments={OFFSET: start})
                return
            except amqp.exceptions.NotFound:
                self.close()
                raise StreamMissing(stream) from None
            except (amqp.exceptions.InternalError, amqp.exceptions.PreconditionFailed) as exc:
                self.close()
                if attempt == self.ATTACH_TRIES or not starting(exc):
                    raise
                eventlet.sleep(self.ATTACH_PAUSE)
            except Exception:
                self.close()
                raise

    def next_batch(self, batch, wait):
        while len(self._buffer) < batch:
            try:
                self.conn.drain_events(timeout=wait)
            except TimeoutError:
                break
        taken, self._buffer[:] = self._buffer[:batch], self._buffer[batch:]
        return taken

    def ack(self, messages):
        if messages:
            self.channel.basic_ack(messages[-1].delivery_tag, multiple=True)

    def close(self):
        try:
            self.conn.release()
        except Exception:  # noqa: BLE001 - closing a dead connection may fail any way
            log.debug("closing the stream connection failed", exc_info=True)


def read_range(amqp_uri, stream, since, until, *, margin, idle, prefetch):
    """The events of `stream` with since <= time < until, as [(body, event)] in stream
    order. Reading stops at the first event later than `until` + `margin` (an outbox
    relay publishes late by up to its sweep), or when the stream stays quiet for `idle`
    seconds (its end)."""
    found = []
    try:
        stop = until + margin
    except OverflowError:  # an `until` late in year 9999: no event is later
        stop = until
    # the offset is an unsigned AMQP timestamp: none before 1970, and no event is older
    consumer = Consumer(amqp_uri, stream, max(since, EPOCH), prefetch=prefetch)
    try:
        while True:
            messages = consumer.next_batch(prefetch, idle)
            if not messages:
                return found
            consumer.ack(messages)
            for message in messages:
                body, event = decoded(message)
                if event is None:
                    continue
                at = event_time(event)
                if at > stop:
                    return found
                if since <= at < until:
                    found.append((body, event))
    finally:
        consumer.close()
