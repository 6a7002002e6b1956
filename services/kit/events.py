"""CloudEvents 1.0 envelope (structured JSON) for every Dealflow event.

`new_event` validates `data` against the catalog, so an event that breaks its contract
never reaches the outbox; `parse_event` is what consumers call on a delivered body.

The entity's version travels as the integer extension `dealflowsequence`. CloudEvents'
own `sequence` extension is a lexicographically ordered string ("10" < "9"), which is not
what subscribers should compare; events published before carried an integer `sequence`,
which `parse_event` still reads. Handlers get the version as `event["sequence"]` either way.
"""
import functools
import uuid

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, pre_load, validate

from kit.catalog import EVENT_TYPES, PRODUCER
from kit.fields import UtcDateTime, rfc3339, utcnow


class UnknownEventType(ValueError):
    pass


SEQUENCE = "dealflowsequence"
LEGACY_SEQUENCE = "sequence"


class Envelope(Schema):
    class Meta:
        unknown = EXCLUDE

    @pre_load
    def legacy_sequence(self, body, **kwargs):
        """Read the version from `sequence` when an older producer sent that (an integer,
        or a string of digits as CloudEvents' sequence extension has it)."""
        if isinstance(body, dict) and SEQUENCE not in body and LEGACY_SEQUENCE in body:
            value = body[LEGACY_SEQUENCE]
            if isinstance(value, str) and value.isascii() and value.isdigit():
                value = int(value)
            body = {**body, SEQUENCE: value}
        return body

    specversion = fields.String(required=True, validate=validate.Equal("1.0"))
    id = fields.String(required=True, validate=validate.Length(min=1))
    source = fields.String(required=True, validate=validate.Regexp(r"^/dealflow/[a-z]+$"))
    type = fields.String(required=True, validate=validate.OneOf(sorted(EVENT_TYPES)))
    time = UtcDateTime(required=True)
    subject = fields.String(required=True, validate=validate.Length(min=1))
    datacontenttype = fields.String(required=True, validate=validate.Equal("application/json"))
    data = fields.Dict(required=True)
    sequence = fields.Integer(data_key=SEQUENCE, required=True, strict=True,
                              validate=validate.Range(min=1))
    correlationid = fields.String(allow_none=True, load_default=None)
    actor = fields.String(allow_none=True, load_default=None)


_ENVELOPE = Envelope()


def exchange_for(service):
    return f"{service}.events"


@functools.cache
def _schemas(etype):
    """(dumper, strict loader, known attribute names) per type; built once, they are
    the bulk of an event's cost otherwise."""
    schema = EVENT_TYPES[etype]
    dumper = schema()
    known = frozenset(field.attribute or name for name, field in dumper.fields.items())
    return dumper, schema(unknown=RAISE), known


@functools.cache
def _loader(etype):
    return EVENT_TYPES[etype](unknown=EXCLUDE)


def dump_data(etype, data):
    """An event's data as its producer published it (JSON values: Decimal as a string,
    datetime as RFC 3339) from the values `parse_event` loaded."""
    return _schemas(etype)[0].dump(data)


def new_event(etype, subject, data, sequence, *, actor=None, correlationid=None, time=None):
    """Build a validated CloudEvent; `data` holds Python values (Decimal, datetime...).

    The result is plain JSON (strings, ints, lists, dicts) so it can sit in a MongoDB
    outbox on FerretDB (no Decimal128) and be compared byte for byte when removed.
    """
    if etype not in EVENT_TYPES:
        raise UnknownEventType(etype)
    dumper, strict, known = _schemas(etype)
    stray = set(data) - known
    if stray:
        raise ValidationError({"data": {key: ["Unknown field."] for key in sorted(stray)}})
    payload = dumper.dump(data)
    errors = strict.validate(payload)
    if errors:
        raise ValidationError({"data": errors})
    event = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": f"/dealflow/{PRODUCER[etype]}",
        "type": etype,
        "time": rfc3339(time or utcnow()),
        "subject": str(subject),
        "datacontenttype": "application/json",
        SEQUENCE: int(sequence),
        "data": payload,
    }
    if correlationid:
        event["correlationid"] = correlationid
    if actor:
        event["actor"] = actor
    return event


def parse_event(body):
    """Validate a delivered CloudEvent; returns (envelope, data) with `data` loaded and
    the entity version under `envelope["sequence"]`.

    Raises marshmallow.ValidationError for a malformed message: such a message can never
    succeed, and the reliable consumer dead-letters it at once.
    """
    envelope = _ENVELOPE.load(body)
    data = _loader(envelope["type"]).load(envelope["data"])
    return envelope, data
