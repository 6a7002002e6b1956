"""Marshmallow schemas of the support HTTP API (bodies, queries, responses)."""
from marshmallow import Schema, fields, validate

from kit.catalog import PRIORITIES
from kit.contacts import ContactFields
from kit.contacts import ContactOut as ContactOut  # the customer look-up's answer
from kit.fields import Integer, JsonBoolean, UtcDateTime, validate_not_blank
from support import domain as D

CHANNELS = ("email", "phone", "web", "chat", "wecom")
ID = validate.Length(min=1, max=100)
KEY = validate.Regexp(r"^[a-z0-9_]{1,64}$", error="Use lower-case letters, digits and '_'.")


def _name(**kw):
    return fields.String(validate=[validate_not_blank, validate.Length(max=200)], **kw)


def _text(**kw):
    return fields.String(validate=validate.Length(max=10000), **kw)


class ContactSchema(ContactFields):
    """Who raised the ticket; with an e-mail address they get the resolution (and the CSAT
    survey) by mail."""

    name = fields.String(allow_none=True, validate=validate.Length(max=200))
    email = fields.Email(allow_none=True)


# --- tickets ---------------------------------------------------------------------------------


class TicketIn(Schema):
    account = _name(required=True, metadata={"description": "the customer's account"})
    contact = fields.Nested(ContactSchema, load_default=None, allow_none=True)
    deal_id = fields.String(load_default=None, allow_none=True, validate=ID)
    subject = _name(required=True)
    description = _text(load_default=None, allow_none=True)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    priority = fields.String(load_default="normal", validate=validate.OneOf(PRIORITIES))
    category = fields.String(load_default=None, allow_none=True, validate=KEY, metadata={
        "description": "routes the ticket to agents with this skill"})
    tier = fields.String(load_default=None, allow_none=True, validate=KEY, metadata={
        "description": "the customer's tier; picks its SLA policy (default otherwise)"})


class ClockOut(Schema):
    target_seconds = fields.Float(attribute="target")
    consumed_seconds = fields.Float(attribute="consumed")
    running = fields.Function(lambda c: c["since"] is not None)
    due_at = UtcDateTime(allow_none=True)
    warned = fields.Boolean()
    breached = fields.Boolean()
    stopped_at = UtcDateTime(allow_none=True)


class SlaOut(Schema):
    calendar = fields.String()
    first_response = fields.Function(lambda s: ClockOut().dump(s["clocks"]["first_response"]))
    resolution = fields.Function(lambda s: ClockOut().dump(s["clocks"]["resolution"]))


class TicketOut(Schema):
    id = fields.String(attribute="_id")
    account = fields.String()
    contact = fields.Nested(ContactSchema, allow_none=True)
    deal_id = fields.String(allow_none=True)
    subject = fields.String()
    description = fields.String(allow_none=True)
    channel = fields.String()
    priority = fields.String()
    category = fields.String(allow_none=True)
    tier = fields.String(allow_none=True)
    status = fields.String()
    assignee = fields.String(allow_none=True)
    queued = fields.Function(D.dispatchable)
    created_at = UtcDateTime()
    updated_at = UtcDateTime()
    first_responded_at = UtcDateTime(allow_none=True)
    resolved_at = UtcDateTime(allow_none=True)
    resolutions = fields.Integer()
    sla = fields.Nested(SlaOut)
    version = fields.Integer()


class TicketQuery(Schema):
    status = fields.String(validate=validate.OneOf(D.STATUSES))
    assignee = fields.String(validate=ID)
    priority = fields.String(validate=validate.OneOf(PRIORITIES))
    category = fields.String(validate=KEY)
    account = fields.String(validate=ID)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String()


class TicketPage(Schema):
    items = fields.List(fields.Nested(TicketOut))
    next_cursor = fields.String(allow_none=True)


class StatusIn(Schema):
    status = fields.String(required=True, validate=validate.OneOf(D.STATUSES))
    reason = fields.String(load_default=None, allow_none=True,
                           validate=validate.Length(max=2000))


class AssignIn(Schema):
    agent_id = fields.String(required=True, allow_none=True, validate=ID, metadata={
        "description": "null puts the ticket back in the queue"})


class ReplyIn(Schema):
    body = fields.String(required=True, validate=[validate_not_blank,
                                                  validate.Length(max=50000)])
    public = JsonBoolean(load_default=True, metadata={
        "description": "false: an internal note the customer never sees"})
    author = fields.String(load_default="agent", validate=validate.OneOf(("agent", "customer")),
                           metadata={"description": "customer: a reply the customer sent "
                                     "(by e-mail, phone...) recorded by an agent"})


class ReplyOut(Schema):
    id = fields.String(attribute="_id")
    ticket_id = fields.String()
    body = fields.String()
    public = fields.Boolean()
    author = fields.String()
    actor = fields.String(allow_none=True)
    created_at = UtcDateTime()


class ReplyQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String()


class ReplyPage(Schema):
    items = fields.List(fields.Nested(ReplyOut))
    next_cursor = fields.String(allow_none=True)


class ReplyResult(Schema):
    reply = fields.Nested(ReplyOut)
    ticket = fields.Nested(TicketOut)


# --- agents ----------------------------------------------------------------------------------


class AgentPath(Schema):
    """The agent id in `PUT /agents/<id>`: as long as the ticket routes take one."""

    id = fields.String(required=True, validate=ID)


class AgentIn(Schema):
    skills = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                         validate=validate.Length(max=100))
    capacity = Integer(validate=validate.Range(1, 1000))
    available = JsonBoolean()


class AgentOut(Schema):
    id = fields.String(attribute="_id")
    skills = fields.List(fields.String())
    capacity = fields.Integer()
    available = fields.Boolean()
    load = fields.Integer()


class AgentList(Schema):
    items = fields.List(fields.Nested(AgentOut))


# --- ratings ---------------------------------------------------------------------------------


class RatingIn(Schema):
    score = Integer(required=True, validate=validate.Range(1, 5))
    comment = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=2000))


class RatingQuery(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class RatingLinkOut(Schema):
    url = fields.String()
    token = fields.String()
    resolution = fields.Integer()
    expires_in_days = fields.Integer()


class RatingView(Schema):
    ticket_id = fields.String()
    subject = fields.String(allow_none=True)
    resolution = fields.Integer()
    state = fields.String(metadata={"enum": ["ratable", "rated", "reopened"]})
    expires_at = UtcDateTime()


class RatingOut(Schema):
    ticket_id = fields.String()
    score = fields.Integer()
    comment = fields.String(allow_none=True)
    resolution = fields.Integer()


# --- delivery projects -----------------------------------------------------------------------


class StepOut(Schema):
    key = fields.String()
    name = fields.String()
    due_at = UtcDateTime(allow_none=True)
    done_at = UtcDateTime(allow_none=True)
    done_by = fields.String(allow_none=True)
    overdue = fields.Boolean()


class StepCompleteIn(Schema):
    """Completing a step takes no fields: the body is empty or `{}`, anything else is
    refused rather than silently ignored."""


class DeliveryOut(Schema):
    id = fields.String(attribute="_id")
    deal_id = fields.String()
    pipeline_id = fields.String(allow_none=True)
    account = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    template = fields.String()
    status = fields.String()
    steps = fields.List(fields.Nested(StepOut))
    overdue = fields.Boolean()
    won_at = UtcDateTime(allow_none=True)
    accepted_at = UtcDateTime(allow_none=True)
    next_due_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()
    updated_at = UtcDateTime()
    version = fields.Integer()


class DeliveryQuery(Schema):
    status = fields.String(validate=validate.OneOf(("open", "accepted")))
    deal_id = fields.String(validate=ID)
    owner_id = fields.String(validate=ID)
    overdue = fields.Boolean(metadata={"description": "true: only projects with a step past "
                                       "its due time (by due time; other filters ignored)"})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String()


class DeliveryPage(Schema):
    items = fields.List(fields.Nested(DeliveryOut))
    next_cursor = fields.String(allow_none=True)
