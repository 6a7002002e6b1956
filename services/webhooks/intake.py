"""The intake as a nameko dependency: one green thread per producer stream reads it from
the offset stored after the last batch, turns each event into the deliveries of the
subscriptions that take it, writes them, stores the offset, and only then acks.

A crash between the write and the offset reads the batch again: the deliveries are keyed
by (subscription, event), so the second insert adds nothing (and an event the relay
published twice is deduplicated the same way). A stream has no competing consumers: one
instance at a time reads each stream, under a lease in its offset document that it renews
as it reads; the others take over when it stops or its lease runs out (a reader that lost
its lease writes no offset, and what it inserted twice the keys absorb).
"""
import datetime as dt
import logging
import time
import uuid

import amqp
import eventlet
from nameko.extensions import DependencyProvider
from prometheus_client import Counter
from pymongo.errors import PyMongoError

from kit.catalog import CATALOG
from kit.config import setting
from kit.fields import utcnow
from kit.mongo import Store
from kit.prom import PromRegistry
from kit.streams import stream_for
from webhooks import deliveries, subscriptions
from webhooks.sender import Sender
from webhooks.streamreader import OFFSET, Consumer, StreamMissing, decoded, event_time

log = logging.getLogger(__name__)


def streams_of(config):
    named = setting(config, "WEBHOOKS.streams") or [f"{s}.events" for s in CATALOG]
    return [name if name.endswith(".stream") else stream_for(name) for name in named]


class Intake(DependencyProvider):
    prom = PromRegistry()

    def setup(self):
        config = self.container.config
        self.streams = streams_of(config)
        self.amqp_uri = config["AMQP_URI"]
        self.prefetch = int(setting(config, "WEBHOOKS.prefetch", 500))
        self.batch = min(int(setting(config, "WEBHOOKS.intake_batch", 500)), self.prefetch)
        self.wait = float(setting(config, "WEBHOOKS.intake_wait_seconds", 0.2))
        self.retry = float(setting(config, "WEBHOOKS.intake_retry_seconds", 2))
        self.lease = float(setting(config, "WEBHOOKS.intake_lease_seconds", 15))
        self.idle = float(setting(config, "WEBHOOKS.intake_idle_seconds", 5))
        self.reader = uuid.uuid4().hex
        self.running = False
        self.consumers = {}
        self.missing = set()
        self.parked = set()

    def start(self):
        self.store = next(d for d in self.container.dependencies
                          if isinstance(d, Store)).store
        self.sender = next(d for d in self.container.dependencies if isinstance(d, Sender))
        self.events = Counter("dealflow_webhook_intake_events_total",
                              "Stream events read by the webhooks intake, by stream",
                              ["stream"], registry=self.prom.registry)
        self.running = True
        for stream in self.streams:
            self.container.spawn_managed_thread(lambda stream=stream: self._run(stream),
                                                identifier=f"webhooks.intake.{stream}")

    def stop(self):
        self.running = False
        for stream, consumer in list(self.consumers.items()):
            consumer.close()
            try:
                self.store.release_stream(stream, self.reader, utcnow())
            except PyMongoError:  # its lease runs out by itself
                log.debug("could not release %s", stream, exc_info=True)

    def kill(self):
        self.running = False
        for consumer in list(self.consumers.values()):
            consumer.close()

    def _run(self, stream):
        while self.running:
            try:
                if not self._consume(stream) and self.running:
                    eventlet.sleep(self.idle)  # no subscription: nothing to read yet
                    continue
            except StreamMissing:
                # a producer that never published (or is not deployed): said once
                (log.debug if stream in self.missing else log.info)(
                    "stream %s does not exist yet; looking again", stream)
                self.missing.add(stream)
            except (OSError, amqp.exceptions.AMQPError, PyMongoError) as exc:
                if self.running:
                    log.warning("intake of %s interrupted (%s); resuming", stream, exc)
            except Exception:  # noqa: BLE001 - the intake of a stream must not end
                if self.running:
                    log.exception("intake of %s failed; resuming", stream)
            finally:
                consumer = self.consumers.pop(stream, None)
                if consumer is not None:
                    consumer.close()
            if self.running:
                eventlet.sleep(self.retry)

    def _consume(self, stream):
        """Read the stream while this instance holds it (another instance's turn comes
        when this one stops or its lease runs out). False, at once, when no enabled
        subscription exists: nothing is read, and nothing written but the stream's offset
        dropped once (an idle platform keeps its database idle). A stream without an
        offset is read from a lease before the earliest subscription was turned on."""
        subs = self.store.enabled_subscriptions()
        if not subs:
            # reading would only drop every event; a subscription made later is read
            # from its own start, not from the offset the last one left
            if stream not in self.parked and self.store.park_stream(stream, self.reader,
                                                                    utcnow()):
                self.parked.add(stream)
            return False
        self.parked.discard(stream)
        position = self.store.take_stream(stream, self.reader, utcnow(), self.lease)
        if position is None:
            return True
        offset, since = position
        if offset is None:
            # a lease's margin for the clocks of the producers and the broker
            since = (min(subscriptions.enabled_since(sub) for sub in subs)
                     - dt.timedelta(seconds=self.lease))
        start = since if offset is None else offset + 1
        consumer = self.consumers[stream] = Consumer(self.amqp_uri, stream, start,
                                                     prefetch=self.prefetch)
        renewed = time.monotonic()
        while self.running:
            messages = consumer.next_batch(self.batch, self.wait)
            if messages:
                if not self.record(stream, messages, since if offset is None else None):
                    log.warning("stream %s was taken over; this instance stops reading it",
                                stream)
                    return True
                consumer.ack(messages)
                renewed = time.monotonic()
            elif time.monotonic() - renewed > self.lease / 3:
                if not self.store.enabled_subscriptions():
                    return False  # the last one was turned off: the stream is parked next
                if not self.store.save_offset(stream, self.reader, None, utcnow(),
                                              self.lease):
                    return True
                renewed = time.monotonic()
        return True

    def record(self, stream, messages, since=None):
        """The deliveries of these stream messages, then their offset. `since`: drop the
        events before it (a first read attaches by timestamp, at a chunk boundary)."""
        now = utcnow()
        subs = self.store.enabled_subscriptions()
        docs = []
        for message in messages:
            body, event = decoded(message)
            if event is None:
                continue
            at = event_time(event)
            if since is not None and at < since:
                continue
            docs.extend(deliveries.new_delivery(sub, event, body, now)
                        for sub in subs if subscriptions.takes(sub, event, at))
        self.store.insert_deliveries(docs)
        self.sender.poke({doc["subscription_id"] for doc in docs})
        self.events.labels(stream).inc(len(messages))
        return self.store.save_offset(stream, self.reader, int(messages[-1].headers[OFFSET]),
                                      utcnow(), self.lease)

    def get_dependency(self, worker_ctx):
        return self
