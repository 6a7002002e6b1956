"""marshmallow schemas of the notify service's HTTP bodies and queries."""
from marshmallow import Schema, fields, validate

from kit.fields import UtcDateTime
from notify.rules import CHANNELS

STATUSES = ("queued", "sent", "failed", "suppressed")
# in this order the first one given leads the query (each has its index with the order)
FILTERS = ("event_id", "recipient", "rule", "status", "channel")


class JsonBoolean(fields.Boolean):
    """true or false, not 0, 1 or "yes" (which marshmallow's Boolean also takes)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class LogEntry(Schema):
    at = UtcDateTime()
    status = fields.String()
    detail = fields.String(allow_none=True)


class NotificationOut(Schema):
    id = fields.String(attribute="_id")
    event_id = fields.Function(lambda doc: doc["event"]["id"])
    event_type = fields.Function(lambda doc: doc["event"]["type"])
    rule = fields.String()
    template = fields.String()
    recipient = fields.String()
    channel = fields.String()
    address = fields.String(allow_none=True)
    locale = fields.String()
    status = fields.String()
    reason = fields.String(allow_none=True)
    attempts = fields.Integer()
    due_at = UtcDateTime(allow_none=True)
    sent_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()
    log = fields.List(fields.Nested(LogEntry))


class NotificationQuery(Schema):
    event_id = fields.String(validate=validate.Length(min=1))
    recipient = fields.String(validate=validate.Length(min=1))
    status = fields.String(validate=validate.OneOf(STATUSES))
    rule = fields.String(validate=validate.Length(min=1))
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String()


class NotificationPage(Schema):
    items = fields.List(fields.Nested(NotificationOut))
    next_cursor = fields.String(allow_none=True)


class SampleEvent(Schema):
    type = fields.String(required=True, validate=validate.Length(min=1))
    data = fields.Dict(required=True)


class PreviewIn(Schema):
    locale = fields.String(load_default=None, validate=validate.Length(min=2, max=35))
    recipient_name = fields.String(load_default="Preview", validate=validate.Length(max=200))
    event = fields.Nested(SampleEvent, load_default=None, metadata={
        "description": "the event to render; the template's sample when absent"})
    links = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)


class SmsOut(Schema):
    template_id = fields.String()
    params = fields.List(fields.String())


class PreviewOut(Schema):
    template = fields.String()
    locale = fields.String()
    subject = fields.String()
    text = fields.String()
    html = fields.String()
    chat = fields.String()
    sms = fields.Nested(SmsOut)


class RuleIn(Schema):
    """A rule set through the admin API; what its values may be is checked against the
    rule grammar and the templates (400 naming the field)."""

    event = fields.String(required=True, validate=validate.Length(min=1, max=100))
    when = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=100)),
                       load_default=dict, metadata={
                           "description": "field -> value, or -> {in: [..]}, "
                                          "{not_in: [..]}, {present: true|false}"})
    template = fields.String(required=True, validate=validate.Length(min=1, max=100))
    recipients = fields.List(fields.String(validate=validate.Length(min=1, max=200)),
                             required=True, validate=validate.Length(min=1, max=20))
    channels = fields.List(fields.String(validate=validate.OneOf(CHANNELS)), required=True,
                           validate=validate.Length(min=1, max=4))
    enabled = JsonBoolean(load_default=True)


class RuleOut(Schema):
    name = fields.String()
    event = fields.String()
    when = fields.Dict()
    template = fields.String()
    recipients = fields.List(fields.String())
    channels = fields.List(fields.String())
    enabled = fields.Boolean()
    source = fields.String(metadata={"description": "config, or admin (set through the API)"})


class RuleList(Schema):
    items = fields.List(fields.Nested(RuleOut))


class UnsubscribeOut(Schema):
    recipient = fields.String()
    channel = fields.String()
    unsubscribed = fields.Boolean()
