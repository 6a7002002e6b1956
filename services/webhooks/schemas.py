"""Marshmallow schemas of the webhooks admin API: a subscription as an integrator's admin
enters it. Where the URL may point is checked apart (webhooks.targets), with its addresses."""
from marshmallow import Schema, ValidationError, fields, validate, validates

from kit.catalog import EVENT_TYPES
from kit.fields import validate_not_blank
from webhooks.signing import BadSecret, check_secret

URL = validate.URL(schemes={"https", "http"}, require_tld=False, error="Not a valid URL.")


class SubscriptionIn(Schema):
    url = fields.String(required=True, validate=[validate.Length(max=2000), URL])
    event_types = fields.List(
        fields.String(validate=validate.OneOf(sorted(EVENT_TYPES))), required=True,
        validate=validate.Length(min=1, error="Name at least one event type."),
        metadata={"description": "the catalog's event types to deliver (docs/asyncapi.yaml)"})
    description = fields.String(load_default=None, allow_none=True,
                                validate=[validate_not_blank, validate.Length(max=200)])
    secret = fields.String(load_default=None, allow_none=True, metadata={
        "description": "whsec_ and base64 of 24 to 64 bytes; generated when left out, and "
                       "shown only in this response"})

    @validates("event_types")
    def distinct(self, value, **kwargs):
        if len(set(value)) != len(value):
            raise ValidationError("List each event type once.")

    @validates("secret")
    def usable_secret(self, value, **kwargs):
        if value is None:
            return
        try:
            check_secret(value)
        except BadSecret as exc:
            raise ValidationError(f"Not a usable secret: {exc}.") from None
