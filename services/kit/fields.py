"""Marshmallow fields for the contracts: money as Decimal strings, ISO codes, UTC times."""
import datetime as dt
from decimal import Decimal, InvalidOperation

import pycountry
from marshmallow import ValidationError, fields

UTC = dt.UTC


def utcnow():
    return dt.datetime.now(UTC)


def to_utc(value):
    """Make a datetime timezone-aware UTC (MongoDB may hand back naive UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def rfc3339(value):
    value = to_utc(value)
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Money(fields.Field):
    """A Decimal amount carried as a JSON string ("1234.50"); floats are refused.

    JSON numbers are accepted only when the body was parsed with ``parse_float=Decimal``
    (kit.http does), so no binary float ever touches an amount.
    """

    default_error_messages = {
        "invalid": "Not a valid amount: give a decimal string such as \"1234.50\".",
        "float": "Amounts must be decimal strings, not floating-point numbers.",
        "negative": "Must not be negative.",
        "places": "At most {places} decimal places.",
    }

    def __init__(self, *, places=4, allow_negative=False, **kwargs):
        self.places = places
        self.allow_negative = allow_negative
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return str(Decimal(value))

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, float):
            raise self.make_error("float")
        if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
            raise self.make_error("invalid")
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise self.make_error("invalid") from exc
        if not amount.is_finite():
            raise self.make_error("invalid")
        if amount < 0 and not self.allow_negative:
            raise self.make_error("negative")
        if -amount.as_tuple().exponent > self.places:
            raise self.make_error("places", places=self.places)
        return amount


class _IsoCode(fields.String):
    """An ISO code of fixed length, upper-cased and looked up in pycountry."""

    length = 0
    default_error_messages = {"code": "Not a valid code."}

    def lookup(self, code):
        raise NotImplementedError

    def _deserialize(self, value, attr, data, **kwargs):
        code = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if len(code) != self.length or self.lookup(code) is None:
            raise self.make_error("code")
        return code


class Currency(_IsoCode):
    """An ISO 4217 currency code."""

    length = 3
    default_error_messages = {"code": "Not an ISO 4217 currency code."}

    def lookup(self, code):
        return pycountry.currencies.get(alpha_3=code)


class Country(_IsoCode):
    """An ISO 3166-1 alpha-2 country code."""

    length = 2
    default_error_messages = {"code": "Not an ISO 3166-1 alpha-2 country code."}

    def lookup(self, code):
        return pycountry.countries.get(alpha_2=code)


class UtcDateTime(fields.AwareDateTime):
    """RFC 3339 in and out; naive input is read as UTC; always stored as UTC."""

    def __init__(self, **kwargs):
        super().__init__(format="iso", default_timezone=UTC, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return to_utc(super()._deserialize(value, attr, data, **kwargs))

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return rfc3339(value)


def validate_not_blank(value):
    if not str(value).strip():
        raise ValidationError("Must not be blank.")
