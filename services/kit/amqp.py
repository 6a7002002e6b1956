"""AMQP publishing with batched publisher confirms, and broker look-ups.

nameko's EventDispatcher waits for one confirm per message (~470 msg/s here); publishing a
batch and then waiting for all its confirms reaches the broker's batched-confirm rate. The
wire format is the one nameko's EventDispatcher uses — a durable topic exchange
`<service>.events`, routing key = event type, persistent JSON — so nameko's `event_handler`
and any plain AMQP client consume it unchanged.
"""
import json
import logging
import time

import amqp
from kombu import Connection

log = logging.getLogger(__name__)

PERSISTENT = 2


class PublishError(Exception):
    """The broker did not confirm the whole batch; the caller keeps it for a retry."""


class ConfirmingPublisher:
    def __init__(self, amqp_uri, *, confirm_timeout=10.0, connect_timeout=3.0):
        self.amqp_uri = amqp_uri
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
        conn = Connection(self.amqp_uri, connect_timeout=self.connect_timeout)
        conn.ensure_connection(max_retries=1)
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
            self._declared.add(name)

    def publish_batch(self, messages):
        """Publish [(exchange, routing_key, body_dict, headers)], then wait for every confirm.

        Returns when the broker has confirmed all of them; raises PublishError otherwise.
        """
        if not messages:
            return
        try:
            channel = self._ensure_channel()
            self._nacked = False
            for exchange, routing_key, body, headers in messages:
                if exchange:
                    self.declare_exchange(exchange, channel)
                msg = amqp.Message(
                    json.dumps(body, separators=(",", ":")).encode(),
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=PERSISTENT,
                    message_id=body.get("id") if isinstance(body, dict) else None,
                    application_headers=headers or {},
                )
                channel.basic_publish(msg, exchange=exchange, routing_key=routing_key)
                self._tag += 1
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
            raise PublishError("broker refused (nacked) part of the batch")


def broker_reachable(amqp_uri, timeout=2.0):
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def queue_depths(amqp_uri, queues, timeout=2.0):
    """Message counts of existing queues by passive declare; a missing queue counts 0."""
    depths = {}
    with Connection(amqp_uri, connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=1)
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
