"""Marshmallow schemas of the accounts and contacts HTTP bodies (leads.accounts)."""
import re

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from kit.fields import Country, CustomFields, UtcDateTime, validate_not_blank
from leads import domain
from leads.schemas import Email

DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _opt_str(max_len, **kw):
    return fields.String(allow_none=True, load_default=None,
                         validate=validate.Length(max=max_len), **kw)


class AccountIn(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True,
                         validate=[validate.Length(min=1, max=200), validate_not_blank])
    domain = fields.String(allow_none=True, load_default=None, validate=validate.Regexp(
        DOMAIN, error="Not a domain name such as example.com (lower case)."),
        metadata={"description": "the company's e-mail domain (matched on conversion)"})
    owner_id = _opt_str(100)
    custom = CustomFields(allow_none=True, load_default=None,
                          metadata={"description": "values of the account custom fields"})


class AccountPatch(Schema):
    """What an edit sets (If-Match required): custom fields merge, null removes one."""

    class Meta:
        unknown = RAISE

    custom = CustomFields(allow_none=True)


class TimelineEntry(Schema):
    id = fields.String()
    seq = fields.Integer(metadata={"description": "the entry's number in its record's "
                                                  "timeline (a lead's, for its activities)"})
    type = fields.String()
    at = UtcDateTime()
    actor = fields.String(allow_none=True)
    lead_id = fields.String(allow_none=True)
    contact_id = fields.String(allow_none=True)
    into = fields.String(allow_none=True)
    summary = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)


class AccountOut(Schema):
    id = fields.String(attribute="_id")
    version = fields.Integer()
    name = fields.String()
    domain = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    team = fields.String(allow_none=True)
    merged_into = fields.String(allow_none=True)
    custom = fields.Dict()
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class AccountPage(Schema):
    items = fields.List(fields.Nested(AccountOut))
    next_cursor = fields.String(allow_none=True)


class RecordQuery(Schema):
    class Meta:
        unknown = RAISE

    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(validate=validate.Length(max=2000))


class ContactQuery(RecordQuery):
    account_id = fields.String(validate=validate.Length(min=1, max=100))


class MergeIn(Schema):
    class Meta:
        unknown = RAISE

    into = fields.String(required=True, validate=validate.Length(min=1, max=100),
                         metadata={"description": "the account that stays"})


class ContactIn(Schema):
    class Meta:
        unknown = RAISE

    account_id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    name = fields.String(required=True,
                         validate=[validate.Length(min=1, max=200), validate_not_blank])
    email = Email(allow_none=True, load_default=None, validate=validate.Length(max=254))
    phone = _opt_str(40, metadata={"description": "E.164, or national for `country`"})
    country = Country(allow_none=True, load_default=None)
    title = _opt_str(200)
    custom = CustomFields(allow_none=True, load_default=None,
                          metadata={"description": "values of the contact custom fields"})

    @post_load
    def normalise(self, data, **kwargs):
        try:
            data["phone"] = domain.normalise_phone(data.get("phone"), data.pop("country"))
        except ValueError as exc:
            raise ValidationError({"phone": [f"Not a valid phone number: {exc}"]}) from None
        data["name"] = data["name"].strip()
        return data


class ContactPatch(Schema):
    """What an edit sets (If-Match required): custom fields merge, null removes one."""

    class Meta:
        unknown = RAISE

    title = fields.String(allow_none=True, validate=validate.Length(max=200))
    custom = CustomFields(allow_none=True)


class ContactOut(Schema):
    id = fields.String(attribute="_id")
    version = fields.Integer()
    account_id = fields.String()
    name = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    title = fields.String(allow_none=True)
    custom = fields.Dict()
    owner_id = fields.String(allow_none=True)
    lead_ids = fields.List(fields.String())
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class ContactPage(Schema):
    items = fields.List(fields.Nested(ContactOut))
    next_cursor = fields.String(allow_none=True)


class RecordTimeline(Schema):
    id = fields.String()
    entries = fields.List(fields.Nested(TimelineEntry))


class AccountTimeline(RecordTimeline):
    """An account's timeline, oldest first, by cursor."""
    next_cursor = fields.String(allow_none=True)
