"""Generate docs/asyncapi.yaml from the event catalog (`make asyncapi`).

tests/unit/test_kit_events.py fails when the committed file differs from this output.
"""
import sys

import yaml
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from kit.amqp import CLOUDEVENTS_JSON
from kit.catalog import CATALOG
from kit.events import SEQUENCE, exchange_for
from kit.streams import RETENTION_DEFAULTS, stream_for

SUBSCRIBING = """\
Every service publishes its events to a durable topic exchange `<service>.events`
(`leads.events`, `deals.events`, `quotes.events`, `support.events`) with the event type as
routing key (`deal.won`, ...). Messages are persistent structured-mode CloudEvents 1.0,
`content_type: application/cloudevents+json` (a JSON document; `datacontenttype` says that
`data` is `application/json`). The integer extension `dealflowsequence` is the entity's
version after the change and grows by one per change of that entity (`subject`).

Changed in 2.0.0: the version was an integer `sequence` attribute and the content type
`application/json`. CloudEvents' `sequence` extension is a string compared
lexicographically ("10" < "9"), so the integer moved to an extension of our own name.
Dealflow's own consumers accept both forms.

Added in 2.2.0: `contract.sent`, a new signing link sent to the customer on request (the
links sent before it stop working).

To subscribe from outside, bind a durable queue of your own; never consume Dealflow's
queues. With any AMQP 0-9-1 client:

    channel.exchange_declare("deals.events", "topic", durable=True)   # idempotent
    channel.queue_declare("billing.deal-events", durable=True,
                          arguments={"x-queue-type": "quorum"})      # or classic
    channel.queue_bind("billing.deal-events", "deals.events", routing_key="deal.*")
    channel.basic_qos(prefetch_count=100)
    # consume with manual acks; ack after your own write has committed

Delivery is at least once: an event may arrive twice (after a broker or relay failure)
and events of one deal may arrive out of order when several instances publish. Use `id`
to drop duplicates and `dealflowsequence` to order and to detect gaps per `subject`. New fields
may be added to `data` at any time; fields are never removed or retyped without a new
event type.
"""

REPLAYING = """
## Replay: the event log (added in 2.1.0)

Every event also lands in the stream `<service>.events.stream` (`deals.events.stream`, ...),
a RabbitMQ stream queue (`x-queue-type: stream`) bound to every routing key of its
exchange. A stream is an append-only log: reading it removes nothing, so a subscriber that
was down, is new, or must start over reads what happened before its own queue existed.
Retention is by age and size (by default {max_age} and {max_gib} GiB per producer; `STREAMS`
in the producer's config); the broker drops whole segments, so a little more may remain.

Read it with any AMQP 0-9-1 client. Do not declare or bind the stream yourself (a declare
with other arguments is refused):

    channel.basic_qos(prefetch_count=500)   # required: a stream refuses a consumer without
    channel.basic_consume("deals.events.stream", on_message, auto_ack=False,
                          arguments={{"x-stream-offset": "first"}})
    # ack every delivery (manual acks are required): an ack only moves the credit window
    # on, nothing is removed

`x-stream-offset` says where to start:
- `"first"`: the oldest event kept; `"next"` (the default): events appended from now on;
  `"last"`: from the last chunk written;
- an integer offset: each delivery carries its own in the `x-stream-offset` header. Store
  the offset of the last event you processed together with your own write, and resume from
  it plus one;
- a timestamp (an AMQP timestamp, whole seconds; pika and py-amqp send a `datetime` as
  one): the events appended from then on. RabbitMQ 3.x starts at the chunk holding that
  time, so events appended a little earlier may come first: drop those whose `time` is
  before the requested one. An event's `time` is never later than its append, so what
  remains is exactly the events from that time on, without gaps per `subject`;
- an interval such as `"1h"` or `"7D"`: that long ago, with the same caveat.

Every consumer of a stream gets every event (there are no competing consumers); to share
the work, partition by `subject` in your own code. Where the broker enables the stream
protocol (plugin `rabbitmq_stream`, port 5552; not locally), stream clients read the same
streams with the same offsets and can keep their offsets on the broker.
""".format(max_age=RETENTION_DEFAULTS["max_age"].replace("D", " days"),
           max_gib=RETENTION_DEFAULTS["max_length_bytes"] // 1024 ** 3)


def _schemas():
    spec = APISpec(title="catalog", version="1", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()])
    for events in CATALOG.values():
        for etype, schema in events.items():
            spec.components.schema(_name(etype), schema=schema)
    return _shared_code_lists(spec.to_dict()["components"]["schemas"])


# Long code lists (ISO 4217 currencies, ISO 3166 countries) are written once and referred
# to, rather than repeated in every event that carries a currency or a country.
CODE_LISTS = (("CurrencyCode", "EUR"), ("CountryCode", "DE"))


def _shared_code_lists(schemas):
    shared = {}

    def visit(node):
        if isinstance(node, dict):
            enum = node.get("enum")
            if isinstance(enum, list) and len(enum) > 20:
                name = next((n for n, probe in CODE_LISTS if probe in enum), None)
                if name is not None:
                    # a nullable field's enum lists null (kit.fields); the shared list
                    # holds the codes only, and the field says null on its own
                    shared[name] = {"type": "string", "enum": [c for c in enum if c is not None]}
                    rest = {k: v for k, v in node.items() if k not in ("enum", "type")}
                    ref = {"$ref": f"#/components/schemas/{name}"}
                    node.clear()
                    if None in enum:
                        node.update({"anyOf": [ref, {"type": "null"}], **rest})
                    else:
                        node.update({"allOf": [ref], **rest})
                    return
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schemas)
    return {**schemas, **shared}


def _name(etype):
    return "".join(part.capitalize() for part in etype.replace(".", "_").split("_")) + "Data"


def envelope_schema(etype):
    return {
        "type": "object",
        "required": ["specversion", "id", "source", "type", "time", "subject",
                     "datacontenttype", "data", SEQUENCE],
        "properties": {
            "specversion": {"type": "string", "const": "1.0"},
            "id": {"type": "string", "format": "uuid"},
            "source": {"type": "string", "const": f"/dealflow/{_service(etype)}"},
            "type": {"type": "string", "const": etype},
            "time": {"type": "string", "format": "date-time"},
            "subject": {"type": "string", "description": "the entity id"},
            "datacontenttype": {"type": "string", "const": "application/json"},
            SEQUENCE: {"type": "integer", "minimum": 1,
                       "description": "the entity's version after this change (an "
                                      "extension attribute of Dealflow's own)"},
            "correlationid": {"type": "string"},
            "actor": {"type": "string", "description": "the person who caused it"},
            "data": {"$ref": f"#/components/schemas/{_name(etype)}"},
        },
    }


def _service(etype):
    return next(svc for svc, events in CATALOG.items() if etype in events)


def build():
    channels = {}
    messages = {}
    for service, events in CATALOG.items():
        for etype, schema in events.items():
            name = _name(etype)[:-4]
            messages[name] = {
                "name": etype,
                "title": etype,
                "summary": (schema.__doc__ or etype).strip().splitlines()[0],
                "contentType": CLOUDEVENTS_JSON,
                "payload": envelope_schema(etype),
            }
            channels[f"{exchange_for(service)}/{etype}"] = {
                "description": f"`{etype}` events on the `{exchange_for(service)}` exchange.",
                "bindings": {"amqp": {
                    "is": "routingKey",
                    "exchange": {"name": exchange_for(service), "type": "topic",
                                 "durable": True, "autoDelete": False, "vhost": "/"},
                    "bindingVersion": "0.2.0",
                }},
                "subscribe": {
                    "operationId": f"on_{etype.replace('.', '_')}",
                    "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": "0.2.0"}},
                    "message": {"$ref": f"#/components/messages/{name}"},
                },
            }
    for service, events in CATALOG.items():
        stream = stream_for(exchange_for(service))
        channels[stream] = {
            "description": f"Every event of `{exchange_for(service)}`, kept as a replayable "
                           "log (see Replay above).",
            "bindings": {"amqp": {
                "is": "queue",
                "queue": {"name": stream, "durable": True, "exclusive": False,
                          "autoDelete": False, "vhost": "/"},
                "bindingVersion": "0.2.0",
            }},
            "subscribe": {
                "operationId": f"replay_{service}",
                "bindings": {"amqp": {"ack": True, "bindingVersion": "0.2.0"}},
                "message": {"oneOf": [{"$ref": f"#/components/messages/{_name(etype)[:-4]}"}
                                      for etype in events]},
            },
        }
    return {
        "asyncapi": "2.6.0",
        "info": {"title": "Dealflow events", "version": "2.2.0",
                 "description": SUBSCRIBING + REPLAYING},
        "defaultContentType": CLOUDEVENTS_JSON,
        "servers": {"local": {"url": "127.0.0.1:5672", "protocol": "amqp",
                              "protocolVersion": "0.9.1"}},
        "channels": channels,
        "components": {"messages": messages, "schemas": _schemas()},
    }


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render():
    return yaml.dump(build(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
