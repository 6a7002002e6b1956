"""A customer's contact as the owning services (quotes, support) store it and answer
notify's look-up (DESIGN: events carry no personal data, notify asks the owner).

The same fields and rules in both services: an e-mail address, a phone number, a locale
(BCP 47, e.g. zh-CN) and an IANA time zone, validated on write so that notify never meets
a zone it cannot use. `contact_id` names the customer to notify without personal data and
the same in every service, so an opt-out from a quote's mail holds for the ticket's too.
"""
import uuid
import zoneinfo

from marshmallow import Schema, ValidationError, fields, validate

CONTACT_NAMESPACE = uuid.UUID("6f1c2a4e-3b7d-4e58-9a0c-1d2e3f405162")
LOCALE = validate.Regexp(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
                         error="A BCP 47 language tag such as zh-CN or en.")


# the zones this machine's tz database knows: validation and the OpenAPI enum agree
ZONES = sorted(zoneinfo.available_timezones())


class ContactFields(Schema):
    """How to reach a customer, as an input schema's fields (none required)."""

    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=254))
    phone = fields.String(load_default=None, allow_none=True, validate=[validate.Regexp(
        r"^\+?[0-9(][0-9 ()\-]{4,30}$", error="Digits, spaces, ()- and a leading +."),
        lambda phone: _international_number_is_valid(phone)])
    locale = fields.String(load_default=None, allow_none=True,
                           validate=[LOCALE, validate.Length(max=35)],
                           metadata={"description": "the language of their mail"})
    # a nullable field's enum lists null too (as kit.fields.Currency's)
    time_zone = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(
        ZONES, error="An IANA time zone such as Asia/Shanghai."),
        metadata={"enum": [*ZONES, None], "example": "Asia/Shanghai"})


def _international_number_is_valid(phone):
    """A number with its country code (+...) must be one that country gives out; a local
    one ("(021) 6888-0000") has no country to check it against and is taken as typed."""
    if phone is None or not phone.strip().startswith("+"):
        return True
    import phonenumbers  # here, not at the top: it is a large share of a start's imports

    try:
        valid = phonenumbers.is_valid_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        valid = False
    if not valid:
        raise ValidationError("Not a valid phone number for its country code.")
    return True


def contact_id(email):
    """The customer's id towards notify: derived from the address, not the address."""
    return str(uuid.uuid5(CONTACT_NAMESPACE, email.strip().lower()))


def contact_of(name, stored):
    """The look-up's answer from a stored contact ({email, phone, locale, time_zone}), or
    None without an e-mail address (nobody to write to). Stored data older than these
    fields is read tolerantly."""
    stored = stored or {}
    email = (stored.get("email") or "").strip()
    if not email:
        return None
    return {"id": contact_id(email), "name": name or None, "email": email,
            "phone": stored.get("phone") or None, "locale": stored.get("locale") or None,
            "time_zone": stored.get("time_zone") or None}


class ContactOut(Schema):
    id = fields.String(metadata={"description": "stable per e-mail address, not the address"})
    name = fields.String(allow_none=True)
    email = fields.String()
    phone = fields.String(allow_none=True)
    locale = fields.String(allow_none=True)
    time_zone = fields.String(allow_none=True)
