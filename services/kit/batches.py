"""Batched event consumption, for projections: one handler call per batch of events.

`@batch_event_handler(source, event_types)` consumes one queue bound to the listed event
types of `source` (named as nameko names an event handler's queue, with `batch` in place
of the type when there are several) with a prefetch of `BATCHES.prefetch` messages. It
hands the handler a list of envelopes when `BATCHES.size` arrived, or `BATCHES.linger_ms`
after the first one of a partial batch — or, with `BATCHES.eager` (off by default), at once
when none of the handler's batches is being handled (a group commit: a lone event waits
for no linger, and while a batch is written the next one fills), and acks every message
of the batch only after the handler returned: a batch is written before it is
acknowledged, so a crash or kill leaves it unacked and the broker delivers it again. The
handler must therefore write keyed by event id (kit.idempotency's shapes, or one update
per entity guarded on the ids it carries), so a redelivered batch, or part of one,
changes nothing.

When the handler raises for a batch, the batch is isolated: each event goes to the handler
again as a batch of one, and only those that fail alone take kit.consumer's path (bounded
retries, then the dead-letter queue). Events of the batch already written come round again
as duplicates. A message that cannot be decoded, or is no catalog event of the listed
types, goes to the dead-letter queue at once, as with kit.consumer's handlers.

A batch in flight when the container stops or is killed is not acked: the broker hands it
out again once the consumer's connection closes. Several instances compete for the queue
as for any nameko event queue; each batch holds only messages delivered to one of them.
"""
import logging
from functools import partial

import eventlet
from kombu import Queue, binding
from marshmallow import ValidationError
from nameko.events import SERVICE_POOL
from nameko.exceptions import ContainerBeingKilled

from kit.config import setting
from kit.consumer import ReliableEventHandler, ReliableQueueConsumer
from kit.events import parse_event

log = logging.getLogger(__name__)

# a queue bound to several event types carries this in place of the type in its name
SEVERAL = "batch"


class BatchQueueConsumer(ReliableQueueConsumer):
    """The reliable queue consumer of batch handlers (a connection of their own): messages
    are handed to their handler's current batch in the consumer thread (an append), and
    each consumer may hold as many unacked messages as its handler's prefetch."""

    @property
    def prefetch_count(self):
        # basic.qos applies to the consumers created after it on the shared channel, so
        # one value serves every batch handler of the container: the largest asked for
        return max((p.prefetch for p in self._providers), default=self.container.max_workers)

    def handle_message(self, provider, body, message):
        provider.collect(body, message)


class BatchEventHandler(ReliableEventHandler):
    queue_consumer = BatchQueueConsumer()

    def __init__(self, source_service, event_types, handler_type=SERVICE_POOL, **kwargs):
        types = (event_types,) if isinstance(event_types, str) else tuple(event_types)
        if not types:
            raise ValueError("a batch event handler needs at least one event type")
        if handler_type != SERVICE_POOL:
            raise ValueError("batch event handlers are service-pool handlers")
        super().__init__(source_service, types[0] if len(types) == 1 else SEVERAL,
                         handler_type, **kwargs)
        self.event_types = types

    def setup(self):
        config = self.container.config
        self.size = int(setting(config, "BATCHES.size", 100))
        self.linger = float(setting(config, "BATCHES.linger_ms", 10)) / 1000
        self.prefetch = max(self.size, int(setting(config, "BATCHES.prefetch", 2 * self.size)))
        self.eager = bool(setting(config, "BATCHES.eager", False))
        self._handling = 0  # batches handed over and not done: what `eager` waits for
        self._pending = []  # (body, message) of the batch being collected
        self._collecting = 0  # its number: a linger timer flushes only the batch it was for
        super().setup()

    def bound_queue(self, queue):
        return Queue(queue.name, durable=True, auto_delete=False, bindings=[
            binding(queue.exchange, routing_key=t) for t in self.event_types])

    # --- collecting (consumer thread) -----------------------------------------------------

    def collect(self, body, message):
        self._pending.append((body, message))
        if len(self._pending) >= self.size or (self.eager and not self._handling):
            self._flush()
        elif len(self._pending) == 1:
            self.container.spawn_managed_thread(
                partial(self._linger, self._collecting),
                identifier=f"{type(self).__name__}.linger[{self.queue.name}]")

    def _linger(self, number):
        eventlet.sleep(self.linger)
        if number == self._collecting and self._pending:
            self._flush()

    def _flush(self):
        batch, self._pending = self._pending, []
        self._collecting += 1
        self._handling += 1
        # parsing, dead-lettering and waiting for a free worker happen off the consumer
        # thread, which keeps delivering (up to the prefetch) meanwhile
        self.container.spawn_managed_thread(
            partial(self._start, batch),
            identifier=f"{type(self).__name__}.start[{self.queue.name}]")

    # --- handling --------------------------------------------------------------------------

    def _start(self, batch):
        events, messages = [], []
        for body, message in batch:
            envelope = self._envelope(body, message)
            if envelope is not None:
                events.append(envelope)
                messages.append(message)
        if events:
            self._spawn(events, messages)
        else:
            self._done()

    def _done(self):
        """A batch handed over is done (acked, isolated, dead-lettered or requeued): with
        `eager`, what arrived meanwhile goes at once when no other batch is in hand."""
        self._handling -= 1
        if self.eager and not self._handling and self._pending:
            self._flush()

    def _envelope(self, body, message):
        try:
            envelope, data = parse_event(body)
        except ValidationError as exc:
            log.error("malformed event on %s: %s", self.queue.name, exc.messages)
            self._dead_letter(message, f"malformed event: {exc.messages}")
            return None
        if envelope["type"] not in self.event_types:
            self._dead_letter(message, f"unexpected type {envelope['type']}")
            return None
        envelope["data"] = data
        return envelope

    def _spawn(self, events, messages):
        try:
            self.container.spawn_worker(
                self, (events,), {}, context_data={},
                handle_result=partial(self._handled, events, messages))
        except ContainerBeingKilled:
            for message in messages:
                self.queue_consumer.requeue_message(message)
            self._handling -= 1  # nothing more is handed over while the container dies

    def _handled(self, events, messages, worker_ctx, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_messages(messages)
        elif len(messages) == 1:
            self.handle_message_processed(messages[0], result, exc_info)
        else:
            log.warning("a batch of %d failed on %s (%s: %s); applying its events one by one",
                        len(messages), self.queue.name, exc_info[0].__name__, exc_info[1])
            # from a thread of its own: this worker still holds its slot in the pool
            self.container.spawn_managed_thread(
                partial(self._isolate, events, messages),
                identifier=f"{type(self).__name__}.isolate[{self.queue.name}]")
        self._done()
        return result, exc_info

    def _isolate(self, events, messages):
        for event, message in zip(events, messages, strict=True):
            self._handling += 1
            self._spawn([event], [message])


batch_event_handler = BatchEventHandler.decorator
