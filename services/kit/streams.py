"""The replayable log: every event a producer publishes also lands in a RabbitMQ stream.

Next to each producer's exchange `<service>.events` lives a stream queue
`<service>.events.stream`, bound to every routing key. A stream is an append-only log that
consumers read without removing anything: a subscriber that was down, new or buggy reads
from an offset, a timestamp or the beginning (docs/asyncapi.yaml says how). Retention is by
age and size (`STREAMS` in the producer's config.yml); the broker drops whole segments once
they are older or the stream larger.

The publisher declares the stream where it declares the exchange, before the first event
goes out, and refuses to publish if it cannot (the events stay in their outboxes): an event
on the exchange but not in the log would be a hole in the public history. A stream that
exists with other retention arguments (the config changed) is only bound, not changed:
queue arguments are fixed at declaration, so retention of an existing stream changes by a
broker policy (`max-age`, `max-length-bytes`), and the producer says so in its log.
"""
import datetime as dt
import logging

import amqp

from kit.config import setting

log = logging.getLogger(__name__)

# defaults when a config has no STREAMS block; each producer's config.yml sets them
RETENTION_DEFAULTS = {
    "max_age": "90D",                       # RabbitMQ's units: Y, M, D, h, m, s
    "max_length_bytes": 20 * 1024 ** 3,
    "max_segment_size_bytes": 100 * 1024 ** 2,  # retention drops whole segments
}


def stream_for(exchange):
    return f"{exchange}.stream"


def stream_arguments(config):
    """The stream's queue arguments from `STREAMS` in a service's config."""
    def get(key):
        return setting(config, f"STREAMS.{key}", RETENTION_DEFAULTS[key])

    return {
        "x-queue-type": "stream",
        "x-max-age": str(get("max_age")),
        "x-max-length-bytes": int(get("max_length_bytes")),
        "x-stream-max-segment-size-bytes": int(get("max_segment_size_bytes")),
    }


def stream_declarer(config):
    """What a publisher calls when it declares an exchange (None: streams turned off)."""
    if not setting(config, "STREAMS.enabled", True):
        return None
    arguments = stream_arguments(config)

    def declare(connection, exchange):
        declare_stream(connection, exchange, arguments)

    return declare


def declare_stream(connection, exchange, arguments):
    """Declare `<exchange>.stream` and bind it to every event of `exchange`, on channels of
    their own: a refused declare closes its channel, and must not take the publisher's."""
    name = stream_for(exchange)
    channel = connection.channel()
    try:
        channel.queue_declare(name, durable=True, auto_delete=False, arguments=arguments)
    except amqp.exceptions.PreconditionFailed as exc:
        log.warning("stream %s exists with other arguments than %s (%s); it is bound as it "
                    "is: change the retention of an existing stream with a policy",
                    name, arguments, exc)
        channel = connection.channel()
        channel.queue_declare(name, passive=True)
    try:
        channel.queue_bind(name, exchange, routing_key="#")
    finally:
        channel.close()


def since(events, time):
    """The events that happened at or after `time`, of those read from a stream attached by
    timestamp: on RabbitMQ 3.x the stream starts at the chunk holding `time`, so events
    appended a little earlier come first. An event's `time` is never later than its append,
    so dropping the earlier ones by `time` leaves exactly the events from `time` on."""
    return [event for event in events if dt.datetime.fromisoformat(event["time"]) >= time]
