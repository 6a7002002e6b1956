"""AMQP publishing with batched publisher confirms, and broker look-ups.

nameko's EventDispatcher waits for one confirm per message (~470 msg/s here); publishing a
batch and then waiting for all its confirms reaches the broker's batched-confirm rate. The
wire format is the one nameko's EventDispatcher uses — a durable topic exchange
`<service>.events`, routing key = event type, persistent JSON — so nameko's `event_handler`
and any plain AMQP client consume it unchanged. The content type is CloudEvents' structured
mode, `application/cloudevents+json`; importing this module teaches kombu to decode it as
JSON (consumers must also list it in their `accept`, as kit.consumer does).
"""
import errno
import json
import logging
import time
from contextlib import contextmanager
from typing import NamedTuple
from urllib.parse import urlsplit

import amqp
import amqp.method_framing
import amqp.transport
import kombu.serialization
import kombu.utils.json
from eventlet.green import threading as green_threading
from kombu import Connection

log = logging.getLogger(__name__)

PERSISTENT = 2
CLOUDEVENTS_JSON = "application/cloudevents+json"

kombu.serialization.register(
    "cloudevents", kombu.utils.json.dumps, kombu.utils.json.loads,
    content_type=CLOUDEVENTS_JSON, content_encoding="utf-8")


class Raw(NamedTuple):
    """A body republished byte for byte, as it was delivered (retries, dead letters):
    a message that could not be decoded must not be changed on its way to the DLQ."""

    body: bytes
    content_type: str | None = None
    content_encoding: str | None = None
    message_id: str | None = None


class PublishError(Exception):
    """The broker did not confirm the whole batch; the caller keeps it for a retry."""


def redacted(amqp_uri):
    """AMQP_URI fit for a log line: the password of every listed node replaced."""
    def one(uri):
        url = urlsplit(uri)
        if url.password is None:
            return uri
        return url._replace(netloc=f"{url.username}:***@{url.netloc.rsplit('@', 1)[-1]}"
                            ).geturl()

    return ";".join(one(uri) for uri in amqp_uri.split(";"))


def connect(amqp_uri, timeout):
    """A connection to the first broker node that answers. AMQP_URI may list several, in
    kombu's failover form (`amqp://u:p@node1/v;amqp://u:p@node2/v`, one per cluster node):
    each gets one try, with no pause between them (kombu waits only after a full round)."""
    conn = Connection(amqp_uri, connect_timeout=timeout)
    conn.ensure_connection(max_retries=max(1, len(conn.alt) - 1))
    return conn


class HeldFrames:
    """py-amqp's frame writer for one connection, installed in place of the connection's
    own: every frame is written under one (green, reentrant) lock, and inside `held()`
    frames are collected and go to the socket together, `flush_bytes` at a time.

    py-amqp makes one socket write per frame (a publish, an ack), and the broker reads and
    handles each write apart: for a relay's batches that was a fifth of the service's CPU
    and half the broker's. Any thread writing on the connection meanwhile (a heartbeat,
    another ack) waits for the lock, so no frame can come between the held ones or be
    left behind; a failure inside `held()` sends none of those still held (a batch larger
    than `flush_bytes` may have sent its first part)."""

    def __init__(self, connection, flush_bytes=256 * 1024):
        self.transport = connection.transport
        self.flush_bytes = flush_bytes
        self.lock = green_threading.RLock()
        self._parts = None  # the frames held, while held
        self._size = 0
        self._write_frame = amqp.method_framing.frame_writer(connection, self)

    @classmethod
    def of(cls, connection, **options):
        """The connection's HeldFrames, installed on first use (a reconnect installs
        py-amqp's writer again, and the next use this one)."""
        writer = connection.frame_writer
        if isinstance(writer, cls) and writer.transport is connection.transport:
            return writer
        writer = cls(connection, **options)
        connection.frame_writer = writer
        return writer

    def __call__(self, *args):
        with self.lock:
            return self._write_frame(*args)

    def write(self, frame):
        """py-amqp's writer hands each frame here, as a view of a buffer it reuses."""
        if self._parts is None:
            self.transport.write(frame)
            return
        self._parts.append(bytes(frame))
        self._size += len(frame)
        if self._size >= self.flush_bytes:
            self._flush()

    def _flush(self):
        data = b"".join(self._parts)
        self._parts, self._size = [], 0
        self.transport.write(data)

    @contextmanager
    def held(self):
        with self.lock:
            self._parts, self._size = [], 0
            try:
                yield
                self._flush()
            finally:
                self._parts = None


def read_ahead(transport, size=8192):
    """Let a py-amqp TCP transport read up to `size` bytes per system call.

    py-amqp reads every frame's header and then its payload with a `recv` each, asking for
    exactly those bytes: over a million calls for the 120,000 deliveries metrics consumes
    per 20,000 seeded leads. It reads no more than asked so that an event loop polling the
    socket cannot miss a frame already read into the buffer (celery/py-amqp#33). Nothing
    here polls: nameko's consumers and the publisher's confirms read only through
    py-amqp's blocking `drain_events`, which takes buffered frames first. The read is
    py-amqp's own `_read` (amqp 5.x), with the larger request. TLS transports keep theirs.
    """
    if not isinstance(transport, amqp.transport.TCPTransport) or \
            getattr(transport, "_read_ahead", None):
        return
    recv = transport._quick_recv
    retry = (errno.EAGAIN, errno.EINTR)

    def _read(n, initial=False):
        rbuf = transport._read_buffer
        try:
            while len(rbuf) < n:
                try:
                    s = recv(max(n - len(rbuf), size))
                except OSError as exc:
                    if exc.errno in retry:
                        if initial and transport.raise_on_initial_eintr:
                            raise TimeoutError() from exc
                        continue
                    raise
                if not s:
                    raise OSError("Server unexpectedly closed connection")
                rbuf += s
        except BaseException:
            transport._read_buffer = rbuf  # as py-amqp: what was read stays for the next
            raise
        result, transport._read_buffer = rbuf[:n], rbuf[n:]
        return result

    transport._read = _read
    transport._read_ahead = size


class ConfirmingPublisher:
    """One connection and channel with confirm counters: not safe to share between
    concurrent green threads (use PublisherPool for that)."""

    def __init__(self, amqp_uri, *, confirm_timeout=10.0, connect_timeout=3.0,
                 content_type=CLOUDEVENTS_JSON, on_declare=None, flush_bytes=256 * 1024):
        self.amqp_uri = amqp_uri
        self.flush_bytes = flush_bytes  # a publish batch's frames per socket write
        # called as on_declare(connection, exchange) with each exchange it declares, before
        # the first publish to it (kit.streams binds the producer's stream there)
        self.on_declare = on_declare
        self.content_type = content_type
        self.confirm_timeout = confirm_timeout
        self.connect_timeout = connect_timeout
        self._conn = None
        self._channel = None
        self._declared = set()
        self._tag = 0
        self._acked = 0
        self._nacked = False

    # -- connection ------------------------------------------------------------------------

    def _ensure_channel(self):
        if self._channel is not None and self._conn.connected:
            return self._channel
        self.close()
        conn = connect(self.amqp_uri, self.connect_timeout)
        read_ahead(conn.connection.transport)
        channel = conn.channel()
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        self._conn, self._channel = conn, channel
        self._declared = set()
        self._tag = self._acked = 0
        return channel

    def close(self):
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.release()
            except Exception:  # noqa: BLE001 - closing a dead connection may fail any way
                log.debug("closing AMQP connection failed", exc_info=True)

    def _on_ack(self, delivery_tag, multiple):
        self._acked = max(self._acked, delivery_tag)

    def _on_nack(self, delivery_tag, multiple):
        self._nacked = True
        self._acked = max(self._acked, delivery_tag)

    # -- publishing ------------------------------------------------------------------------

    def declare_exchange(self, name, channel):
        if name not in self._declared:
            channel.exchange_declare(name, "topic", durable=True, auto_delete=False)
            if self.on_declare is not None:
                self.on_declare(self._conn, name)
            self._declared.add(name)

    def publish_batch(self, messages):
        """Publish [(exchange, routing_key, body, headers)], then wait for every confirm.

        `body` is a dict (sent as JSON) or a Raw (sent as it is).

        Returns when the broker has confirmed all of them; raises PublishError otherwise.
        """
        if not messages:
            return
        try:
            channel = self._ensure_channel()
            self._nacked = False
            for exchange in {m[0] for m in messages if m[0]}:  # each a round trip, once
                self.declare_exchange(exchange, channel)
            held = HeldFrames.of(self._conn.connection, flush_bytes=self.flush_bytes)
            with held.held():  # anything that waits for an answer runs before or after
                self._publish_all(channel, messages)
            deadline = time.monotonic() + self.confirm_timeout
            while self._acked < self._tag:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PublishError("timed out waiting for publisher confirms")
                self._conn.drain_events(timeout=remaining)
        except PublishError:
            self.close()
            raise
        except (TimeoutError, OSError, amqp.exceptions.AMQPError, ConnectionError) as exc:
            self.close()
            raise PublishError(f"broker unavailable: {exc}") from exc
        except Exception as exc:  # kombu wraps connection errors in its own types
            self.close()
            raise PublishError(f"publish failed: {exc}") from exc
        if self._nacked:
            # a fresh channel next time: a RabbitMQ 3.10 channel that was nacked because a
            # quorum queue lost its leader (a node died) keeps nacking that queue after a
            # new leader is elected; a new channel reaches the new leader
            self.close()
            raise PublishError("broker refused (nacked) part of the batch")

    def _publish_all(self, channel, messages):
        for exchange, routing_key, body, headers in messages:
            if not isinstance(body, Raw):
                body = Raw(json.dumps(body, separators=(",", ":")).encode(),
                           self.content_type, "utf-8",
                           body.get("id") if isinstance(body, dict) else None)
            properties = {k: v for k, v in (
                ("content_type", body.content_type),
                ("content_encoding", body.content_encoding),
                ("message_id", body.message_id)) if v}
            msg = amqp.Message(body.body, delivery_mode=PERSISTENT,
                               application_headers=headers or {}, **properties)
            channel.basic_publish(msg, exchange=exchange, routing_key=routing_key)
            self._tag += 1


class PublisherPool:
    """Confirming publishers for concurrent green threads, one per thread at a time.

    A publisher's delivery-tag and ack counters and its socket belong to one batch in
    flight; shared, one thread's failure closes the connection under another's batch.
    The pool grows to the number of concurrent publishers (at most the worker count)."""

    def __init__(self, amqp_uri, **options):
        self.amqp_uri = amqp_uri
        self.options = options
        self._idle = []
        self._closed = False

    @contextmanager
    def publisher(self):
        publisher = self._idle.pop() if self._idle else ConfirmingPublisher(
            self.amqp_uri, **self.options)
        try:
            yield publisher
        finally:
            if self._closed:
                publisher.close()
            else:
                self._idle.append(publisher)

    def publish_batch(self, messages):
        with self.publisher() as publisher:
            publisher.publish_batch(messages)

    def close(self):
        self._closed = True
        idle, self._idle = self._idle, []
        for publisher in idle:
            publisher.close()


def broker_reachable(amqp_uri, timeout=2.0):
    try:
        with connect(amqp_uri, timeout):
            pass
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def queue_depths(amqp_uri, queues, timeout=2.0):
    """Message counts of existing queues by passive declare; a missing queue counts 0."""
    depths = {}
    with connect(amqp_uri, timeout) as conn:
        for name in queues:
            channel = conn.channel()
            try:
                _, count, _ = channel.queue_declare(name, passive=True)
                depths[name] = count
            except amqp.exceptions.NotFound:
                depths[name] = 0
            finally:
                try:
                    channel.close()
                except Exception:  # noqa: BLE001 - channel already closed by the NotFound
                    pass
    return depths
