"""Marshmallow schemas of the webhooks admin API: a subscription as an integrator's admin
enters it. Where the URL may point is checked apart (webhooks.targets), with its addresses."""
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from kit.catalog import EVENT_TYPES
from kit.fields import UtcDateTime, validate_not_blank
from webhooks.signing import BadSecret, check_secret


class TargetUrl(validate.URL):
    """marshmallow's URL check, and a port the sender can connect to: its pattern passes
    :99999, :0 and non-ASCII digits (:٣), which urllib refuses (ValueError, a 500 at the
    target check) or, for 0, reads as "no port" and sends to 443 or 80 instead."""

    PORT = "Not a valid URL: a port is a number from 1 to 65535."

    def __call__(self, value):
        value = super().__call__(value)
        try:
            port = urlsplit(value).port
        except ValueError:
            raise ValidationError(self.PORT) from None
        if port == 0:
            raise ValidationError(self.PORT)
        return value


URL = TargetUrl(schemes={"https", "http"}, require_tld=False, error="Not a valid URL.")
STATUSES = ("pending", "delivered", "failed")


class SubscriptionChange(Schema):
    """What an update may change (every field optional there)."""

    url = fields.String(required=True, validate=[validate.Length(max=2000), URL])
    event_types = fields.List(
        fields.String(validate=validate.OneOf(sorted(EVENT_TYPES))), required=True,
        validate=validate.Length(min=1, error="Name at least one event type."),
        metadata={"description": "the catalog's event types to deliver (docs/asyncapi.yaml)"})
    description = fields.String(load_default=None, allow_none=True,
                                validate=[validate_not_blank, validate.Length(max=200)])

    @validates("event_types")
    def distinct(self, value, **kwargs):
        if len(set(value)) != len(value):
            raise ValidationError("List each event type once.")


def usable_secret(value):
    if value is None:
        return
    try:
        check_secret(value)
    except BadSecret as exc:
        raise ValidationError(f"Not a usable secret: {exc}.") from None


SECRET_DOC = "whsec_ and base64 of 24 to 64 bytes; generated when left out, and shown only " \
             "in this response"


class SubscriptionIn(SubscriptionChange):
    secret = fields.String(load_default=None, allow_none=True, validate=usable_secret,
                           metadata={"description": SECRET_DOC})


class SubscriptionOut(Schema):
    id = fields.String(attribute="_id")
    url = fields.String()
    event_types = fields.List(fields.String())
    description = fields.String(allow_none=True)
    enabled = fields.Boolean()
    disabled_reason = fields.String(allow_none=True)
    disabled_at = UtcDateTime(allow_none=True)
    failures_in_a_row = fields.Integer()
    failing_since = UtcDateTime(allow_none=True)
    secrets_in_force = fields.Integer(metadata={
        "description": "how many secrets sign each delivery (2 during a rotation)"})
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class SubscriptionCreated(SubscriptionOut):
    secret = fields.String(metadata={"description": "shown only here: store it now"})


class SubscriptionQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String()


class SubscriptionPage(Schema):
    items = fields.List(fields.Nested(SubscriptionOut))
    next_cursor = fields.String(allow_none=True)


class RotateIn(Schema):
    secret = fields.String(load_default=None, allow_none=True, validate=usable_secret,
                           metadata={"description": SECRET_DOC})
    grace_hours = fields.Float(load_default=None, allow_none=True,
                               validate=validate.Range(min=0, max=24 * 30), metadata={
                                   "description": "how long the old secret keeps signing "
                                                  "(default from the configuration)"})


class RotateOut(Schema):
    id = fields.String()
    secret = fields.String()
    previous_valid_until = UtcDateTime(allow_none=True)


class Attempt(Schema):
    at = UtcDateTime()
    status = fields.Integer(allow_none=True, metadata={"description": "the HTTP status"})
    outcome = fields.String()
    error = fields.String(allow_none=True)
    seconds = fields.Float(allow_none=True)


class DeliveryOut(Schema):
    id = fields.String(attribute="_id", metadata={"description": "the webhook-id header"})
    subscription_id = fields.String()
    event_id = fields.String()
    event_type = fields.String()
    subject = fields.String()
    sequence = fields.Integer()
    status = fields.String()
    attempts = fields.Integer()
    due_at = UtcDateTime(allow_none=True)
    delivered_at = UtcDateTime(allow_none=True)
    created_at = UtcDateTime()
    log = fields.List(fields.Nested(Attempt))


class DeliveryQuery(Schema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String()


class DeliveryPage(Schema):
    items = fields.List(fields.Nested(DeliveryOut))
    next_cursor = fields.String(allow_none=True)


class RedeliverIn(Schema):
    since = UtcDateTime(required=True, metadata={"description": "events from this time on"})
    until = UtcDateTime(load_default=None, allow_none=True,
                        metadata={"description": "and before this time (default: now)"})

    @validates_schema
    def ordered(self, data, **kwargs):
        if data.get("until") is not None and data["until"] <= data["since"]:
            raise ValidationError("Must be later than since.", "until")


class RedeliverOut(Schema):
    events = fields.Integer(metadata={"description": "events of the range this subscription "
                                                    "takes"})
    deliveries = fields.Integer(metadata={"description": "deliveries queued again or anew"})
    since = UtcDateTime()
    until = UtcDateTime()
