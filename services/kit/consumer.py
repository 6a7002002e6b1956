"""Reliable event consumption: bounded, growing retries on RabbitMQ, then a dead-letter queue.

nameko acks and drops a message whose handler raised (or, with requeue_on_error, requeues
it at once in a hot loop). Here a failed message is copied (confirmed) into
`<queue>.retry.<n>`, a queue whose TTL dead-letters it back to `<queue>` after the n-th
delay of `CONSUMER.retry_delays_ms`, and only then acked; a header counts the rounds. The
delays grow (1 s ... 10 min by default), so a dependency outage of several minutes is
ridden out instead of dead-lettering everything in flight. After the last retry the message
is copied, with its error, to `<queue>.dlq` (confirmed) and acked; `kit.deadletters`
replays it once the cause is fixed.

Which failures are worth a retry is one rule (`is_permanent`): a failure that can never
pass (a schema error, a domain rule: a DealflowError) goes to the dead-letter queue at once;
a transient one (the database, the broker, Unavailable, Retryable) and anything unknown
goes through the retries. A handler may override both tuples. A message that cannot be
decoded or parsed as a catalog event, and a replayed dead letter that fails again, go to
the dead-letter queue at once, so nothing is dropped and nothing loops.
"""
import logging
from functools import partial

from eventlet.event import Event
from eventlet.semaphore import Semaphore
from kombu import Queue
from marshmallow import ValidationError
from nameko.events import SERVICE_POOL, EventHandler
from nameko.extensions import SharedExtension
from nameko.messaging import QueueConsumer
from pymongo.errors import PyMongoError

from kit.amqp import (
    CLOUDEVENTS_JSON,
    HeldFrames,
    PublisherPool,
    PublishError,
    Raw,
    connect,
    read_ahead,
    redacted,
)
from kit.config import setting
from kit.errors import Contention, DealflowError, Retryable, Unavailable
from kit.events import parse_event
from kit.prom import PromRegistry

log = logging.getLogger(__name__)


def queue_arguments(config):
    """Arguments for every queue we declare: classic v2 locally, quorum in a cluster.

    A quorum queue dead-letters at most once unless told otherwise: a message expiring from
    a retry queue (or rejected) while the target queue's leader is being re-elected after a
    node failure would be dropped. At-least-once dead-lettering needs `reject-publish`
    overflow (none of our queues has a length limit, so nothing is ever refused for it)."""
    qtype = setting(config, "AMQP_QUEUES.type", "classic")
    if qtype == "quorum":
        return {"x-queue-type": "quorum", "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish"}
    return {"x-queue-version": 2}


RETRIES = "x-dealflow-retries"
CONNECT_TIMEOUT = 3.0  # per listed broker node, when the queues are declared
REPLAYED = "x-dealflow-replayed"

# failures that can never pass, unless they are also transient (Unavailable is a
# DealflowError); everything else, bugs included, is retried
PERMANENT = (ValidationError, DealflowError)
# Contention: writers kept racing for the entity; the same event passes on a later try
TRANSIENT = (PyMongoError, PublishError, ConnectionError, TimeoutError, Unavailable, Retryable,
             Contention)


def is_permanent(exc, permanent=PERMANENT, transient=TRANSIENT):
    return isinstance(exc, permanent) and not isinstance(exc, transient)


def retries_so_far(message, queue_name):
    headers = message.headers or {}
    if RETRIES in headers:
        return int(headers[RETRIES])
    # rejected into the first retry queue by the broker (the fallback path): count rounds
    for death in headers.get("x-death") or []:
        if death.get("queue") == queue_name and death.get("reason") == "rejected":
            return int(death.get("count", 0))
    return 0


class ReliableQueueConsumer(QueueConsumer):
    """nameko's queue consumer, except that a message kombu cannot decode (bad JSON, a
    content type not accepted) goes to its handler, which dead-letters it: kombu's
    ConsumerMixin would log and ack it, i.e. drop it. It also accepts CloudEvents'
    structured content type. (A SharedExtension of its own type: event handlers share one
    connection of their own, apart from nameko's RPC consumers.)"""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._connected = False  # consumers were set up once (the queues are declared)

    @property
    def accept(self):
        return [*self.container.accept, CLOUDEVENTS_JSON]

    def ack_message(self, message):
        # nameko catches amqp's ConnectionError only; a socket reset (the broker node died
        # between the handler's write and its ack) escaped and killed the container. The
        # broker takes back an unacked message when its connection dies, and handlers
        # write keyed by event id, so the redelivery changes nothing.
        try:
            super().ack_message(message)
        except OSError as exc:
            log.warning("could not ack on %s (%s); the broker redelivers it", message.channel,
                        exc)

    def ack_messages(self, messages):
        """Ack a batch in one socket write: py-amqp writes each ack on its own, and the
        broker reads and handles each such write apart (as the publisher found for its
        frames: kit.amqp). Messages of a channel that is gone are left to the broker."""
        channel = messages[0].channel if messages else None
        if len(messages) < 2 or any(m.channel is not channel for m in messages):
            for message in messages:
                self.ack_message(message)
            return
        connection = channel.connection
        if not connection:
            return  # the broker took them back with the connection
        try:
            with HeldFrames.of(connection).held():
                for message in messages:
                    message.ack()
        except (OSError, ConnectionError) as exc:
            log.warning("could not ack %d messages on %s (%s); the broker redelivers them",
                        len(messages), channel, exc)

    def requeue_message(self, message):
        try:
            super().requeue_message(message)
        except OSError as exc:
            log.warning("could not requeue (%s); the broker takes it back", exc)

    def get_consumers(self, consumer_cls, channel):
        # the handlers' queues were declared, with their bindings, at setup
        # (QueueDeclarations): the first consumers only consume, where kombu's would
        # declare them all again, one answer awaited per binding; after a reconnect they
        # declare (the broker may have lost them)
        first, self._connected = not self._connected, True
        read_ahead(channel.connection.transport)  # this connection's and each reconnect's
        if first:
            consumer_cls = partial(consumer_cls, auto_declare=False)
        consumers = super().get_consumers(consumer_cls, channel)
        for provider, consumer in self._consumers.items():
            consumer.on_decode_error = partial(self._undecodable, provider)
        return consumers

    def on_connection_error(self, exc, interval):
        # nameko's own message redacts the first password of an address list only
        log.warning("Error connecting to broker at %s (%s); retrying in %s seconds",
                    redacted(self.amqp_uri), exc, interval)

    def _undecodable(self, provider, message, exc):
        # called inside the consumer thread's drain_events: publish from a thread of its own
        self.container.spawn_managed_thread(
            partial(provider.handle_undecodable, message, exc),
            identifier=f"{type(provider).__name__}.handle_undecodable")


class QueueDeclarations(SharedExtension):
    """The queues of a container's event handlers, declared at setup over one connection
    and channel rather than one per handler, and without waiting for each answer: the
    broker handles a channel's methods in order, so one answered call after them confirms
    them all (a refused declaration closes the channel, and that call raises its error).
    Handlers set up concurrently, so whoever declares sends what the others asked for
    meanwhile too, with one confirmation for all; each exchange is declared once per
    connection (kombu declares a binding's exchange again for every binding, waiting for
    each answer: a round trip per event type). Closed when the container starts."""

    def __init__(self):
        super().__init__()
        self._lock = Semaphore()
        self._conn = None
        self._exchanges = set()  # names declared on this connection
        self._asked = []  # (queues, confirm, Event) not declared yet

    def declare(self, queues, confirm):
        """Declare `queues` (kombu Queues, with their exchanges and bindings); returns once
        the broker has them, by a passive declaration of the queue named `confirm`."""
        asked = (queues, confirm, Event())
        self._asked.append(asked)
        with self._lock:
            if self._conn is None:  # (others ask meanwhile, and go in the same batch)
                conn = connect(self.container.config["AMQP_URI"], CONNECT_TIMEOUT)
                self._channel, self._conn = conn.channel(), conn
            batch, self._asked = self._asked, []
            if batch:
                self._send(batch)
        asked[2].wait()  # raises the error of its batch

    def _send(self, batch):
        try:
            for queues, _, _ in batch:
                for queue in queues:
                    self._declare(queue(self._channel))
            self._channel.queue_declare(batch[-1][1], passive=True)
        except Exception as exc:  # noqa: BLE001 - handed to every handler of the batch
            self._close()  # the channel is closed by the refusal
            for _, _, done in batch:
                done.send_exception(exc)
        else:
            for _, _, done in batch:
                done.send(None)

    def _declare(self, queue):
        channel = self._channel
        for exchange in (queue.exchange, *(b.exchange for b in queue.bindings)):
            if exchange is not None and exchange.name and exchange.name not in self._exchanges:
                exchange.declare(nowait=True, channel=channel)
                self._exchanges.add(exchange.name)
        queue.queue_declare(nowait=True, passive=False, channel=channel)
        if queue.exchange is not None and queue.exchange.name:
            queue.queue_bind(nowait=True, channel=channel)
        for b in queue.bindings:
            b.bind(queue, nowait=True, channel=channel)

    def _close(self):
        conn, self._conn = self._conn, None
        self._exchanges = set()
        if conn is not None:
            try:
                conn.release()
            except Exception:  # noqa: BLE001 - closing a connection the broker dropped
                log.debug("closing the declaring connection failed", exc_info=True)

    def start(self):
        self._close()

    def stop(self):
        self._close()

    def kill(self):
        self._close()


class RetryPublishers(SharedExtension):
    """The publishers that move failed messages to retry and dead-letter queues, one per
    concurrent worker: a publisher's confirm counters and socket belong to one batch in
    flight. Shared by the container's handlers, so it holds at most max_workers
    connections, opened only when that many fail at once."""

    def setup(self):
        self.pool = PublisherPool(self.container.config["AMQP_URI"])

    def publish_batch(self, messages):
        self.pool.publish_batch(messages)

    def stop(self):
        self.pool.close()

    def kill(self):
        self.pool.close()


class ReliableEventHandler(EventHandler):
    prom = PromRegistry()
    queue_consumer = ReliableQueueConsumer()
    publisher = RetryPublishers()
    declarations = QueueDeclarations()

    def __init__(self, source_service, event_type, handler_type=SERVICE_POOL, *,
                 permanent=PERMANENT, transient=TRANSIENT, **kwargs):
        super().__init__(source_service, event_type, handler_type=handler_type, **kwargs)
        self.permanent = permanent
        self.transient = transient

    def setup(self):
        super().setup()
        self.queue = self.bound_queue(self.queue)
        config = self.container.config
        name = self.queue.name
        delays = setting(config, "CONSUMER.retry_delays_ms") or (
            [int(setting(config, "CONSUMER.retry_delay_ms", 1000))]
            * int(setting(config, "CONSUMER.max_retries", 5)))
        self.max_retries = len(delays)
        self.retry_queues = [f"{name}.retry.{n}" for n in range(1, len(delays) + 1)]
        self.dead_letter_queue = f"{name}.dlq"
        base = queue_arguments(config)
        # a rejected message (when it cannot be republished) takes the first retry queue
        self.queue.queue_arguments = {
            **base,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.retry_queues[0] if delays else name + ".dlq",
        }
        retries = [Queue(queue, durable=True, queue_arguments={
            **base,
            "x-message-ttl": int(delay),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": name,
        }) for queue, delay in zip(self.retry_queues, delays, strict=True)]
        dlq = Queue(self.dead_letter_queue, durable=True, queue_arguments=base)
        # bound now, before the container starts and /readyz says yes: nameko binds it
        # later, from its consumer thread, and events published meanwhile would be lost
        self.declarations.declare([*retries, dlq, self.queue], confirm=name)
        self.prom.dead_letters.queues.add(self.dead_letter_queue)

    def bound_queue(self, queue):
        """The queue to consume, as nameko built it (kit.batches binds several types)."""
        return queue

    def handle_undecodable(self, message, exc):
        log.error("undecodable message on %s (content type %s): %s",
                  self.queue.name, message.content_type, exc)
        self._dead_letter(message, f"undecodable message: {exc}")

    def handle_message(self, body, message):
        try:
            envelope, data = parse_event(body)
        except ValidationError as exc:
            log.error("malformed event on %s: %s", self.queue.name, exc.messages)
            self._dead_letter(message, f"malformed event: {exc.messages}")
            return
        if envelope["type"] != self.event_type:
            self._dead_letter(message, f"unexpected type {envelope['type']}")
            return
        envelope["data"] = data
        super().handle_message(envelope, message)

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return
        error = f"{exc_info[0].__name__}: {exc_info[1]}"
        retries = retries_so_far(message, self.queue.name)
        if (message.headers or {}).get(REPLAYED):
            log.error("replayed message failed again on %s: %s", self.queue.name, error)
            self._dead_letter(message, f"failed again after replay: {error}")
        elif is_permanent(exc_info[1], self.permanent, self.transient):
            log.error("permanent failure on %s: %s", self.queue.name, error)
            self._dead_letter(message, f"permanent failure: {error}")
        elif retries >= self.max_retries:
            log.error("dead-lettering after %d retries on %s: %s",
                      retries, self.queue.name, error)
            self._dead_letter(message, error)
        else:
            log.warning("handler failed on %s (retry %d of %d): %s",
                        self.queue.name, retries + 1, self.max_retries, exc_info[1])
            self._retry(message, retries)

    def _retry(self, message, retries):
        headers = {k: v for k, v in (message.headers or {}).items() if k != "x-death"}
        headers[RETRIES] = retries + 1
        try:
            self.publisher.publish_batch(
                [("", self.retry_queues[retries], as_delivered(message), headers)])
        except PublishError as exc:
            log.warning("could not schedule the retry (%s); rejecting instead", exc)
            self._reject(message)
            return
        self.queue_consumer.ack_message(message)

    def _reject(self, message):
        if message.channel.connection:
            try:
                message.reject(requeue=False)
            except ConnectionError:  # the broker takes the message back by itself
                pass

    def _dead_letter(self, message, error):
        headers = dict(message.headers or {})
        headers.pop("x-death", None)
        headers.update({
            "x-dealflow-error": error[:1000],
            "x-dealflow-queue": self.queue.name,
            "x-dealflow-routing-key": message.delivery_info.get("routing_key"),
        })
        try:
            self.publisher.publish_batch(
                [("", self.dead_letter_queue, as_delivered(message), headers)])
        except PublishError as exc:
            log.warning("could not dead-letter (%s); the message goes round again", exc)
            self._reject(message)
            return
        self.queue_consumer.ack_message(message)


def as_delivered(message):
    """The message's body and properties as they came (py-amqp hands over a body it
    could decode with its content encoding as str)."""
    body = message.body
    if isinstance(body, str):
        body = body.encode(message.content_encoding or "utf-8")
    return Raw(bytes(body), message.content_type, message.content_encoding,
               message.properties.get("message_id"))


event_handler = ReliableEventHandler.decorator
