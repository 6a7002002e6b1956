"""Reading the producers' event logs (kit.streams) as docs/asyncapi.yaml tells integrators
to: a plain AMQP 0-9-1 consumer with `x-stream-offset`, a prefetch and manual acks.

A stream never says "this is the end": a reader asks where the end is now (`tail`: the
offset of the last message, read from the last chunk) and reads up to it; a stream that
delivers nothing for `idle_seconds` is taken as read to its end too (its tail moved back
only if retention dropped everything). Offsets are per message and only grow.
"""
import datetime as dt
import json

import amqp
from marshmallow import ValidationError

from kit.amqp import connect
from kit.catalog import PRODUCER
from kit.events import exchange_for, parse_event
from kit.streams import stream_for

OFFSET = "x-stream-offset"


def streams_of(event_types):
    """The streams holding `event_types`, one per producer, sorted."""
    return sorted({stream_for(exchange_for(PRODUCER[t])) for t in event_types})


class StreamReader:
    def __init__(self, amqp_uri, *, prefetch=1000, idle_seconds=2.0, connect_timeout=3.0):
        self.amqp_uri = amqp_uri
        self.prefetch = int(prefetch)
        self.idle_seconds = float(idle_seconds)
        self.connect_timeout = float(connect_timeout)

    def read(self, stream, start="first", until=None, idle_seconds=None):
        """Batches of (offset, body) from `start` ("first", "last" or an offset) up to and
        including offset `until` (None: until the stream goes quiet). Nothing when the
        stream does not exist (its producer never published)."""
        idle = self.idle_seconds if idle_seconds is None else idle_seconds
        with connect(self.amqp_uri, self.connect_timeout) as conn:
            channel = conn.channel()
            try:
                channel.queue_declare(stream, passive=True)
            except amqp.exceptions.NotFound:
                return
            channel.basic_qos(0, self.prefetch, False)
            pending = []
            channel.basic_consume(stream, callback=pending.append, no_ack=False,
                                  arguments={OFFSET: start})
            done = False
            while not done:
                try:
                    conn.drain_events(timeout=idle)
                except TimeoutError:
                    done = True
                if not pending:
                    continue
                batch, pending[:] = list(pending), []
                # the ack moves the credit window on; a stream removes nothing
                channel.basic_ack(batch[-1].delivery_tag, multiple=True)
                out = []
                for message in batch:
                    offset = int(message.headers[OFFSET])
                    if until is not None and offset > until:
                        done = True
                        break
                    out.append((offset, message.body))
                    if until is not None and offset == until:
                        done = True
                if out:
                    yield out

    def tail(self, stream):
        """The offset of the stream's last message now, or None (empty or absent)."""
        last = None
        for batch in self.read(stream, "last", idle_seconds=min(self.idle_seconds, 0.5)):
            last = batch[-1][0]
        return last

    def first_offset(self, stream):
        """The offset of the oldest message kept, or None (empty or absent): above 0 when
        retention has dropped the stream's beginning (offsets start at 0 and only grow;
        they may skip, so this is no message count)."""
        for batch in self.read(stream, "first", idle_seconds=min(self.idle_seconds, 0.5)):
            return batch[0][0]
        return None

    def edge(self, stream, which):
        """(offset, event time) of the first or last message, or None."""
        found = None
        for batch in self.read(stream, which, idle_seconds=min(self.idle_seconds, 0.5)):
            found = batch[0] if which == "first" else batch[-1]
            if which == "first":
                break
        if found is None:
            return None
        return found[0], dt.datetime.fromisoformat(json.loads(found[1])["time"])


def parsed(body, wanted):
    """The loaded event (data deserialised, as handlers get it) of a stream message, or
    None for a type not in `wanted` or a message no handler could take (the live
    consumer dead-letters those: they were never applied either)."""
    try:
        envelope, data = parse_event(json.loads(body))
    except (ValidationError, ValueError, TypeError):
        return None
    if envelope["type"] not in wanted:
        return None
    envelope["data"] = data
    return envelope
