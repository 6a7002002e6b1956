"""Marshmallow fields for the contracts: money as Decimal strings, ISO codes, UTC times."""
import datetime as dt
import re
from decimal import Decimal

import pycountry
from marshmallow import Schema, ValidationError, fields, post_load

from kit import money

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
    """A Decimal amount carried as a JSON string ("1234.50"), below MAX_AMOUNT.

    JSON numbers are refused (a float may already have lost digits, and the contract says
    string); so are exponent forms ("1e5" would come back out as "1E+5"). Alone, a Money
    field allows `places` decimal places; in a CurrencyAmounts schema the amount then gets
    exactly its currency's minor units.
    """

    default_error_messages = {
        "invalid": "Not a valid amount: give a decimal string such as \"1234.50\".",
        "float": "Amounts are decimal strings such as \"1234.50\", not JSON numbers.",
        "exponent": "Write amounts without an exponent: \"100000\", not \"1e5\".",
        "negative": "Must not be negative.",
        "places": "At most {places} decimal places.",
        "too_large": "Must be less than {maximum}.",
    }

    def __init__(self, *, places=4, allow_negative=False, **kwargs):
        self.places = places
        self.allow_negative = allow_negative
        sign = "-?" if allow_negative else ""
        digits = len(str(money.MAX_AMOUNT)) - 1
        kwargs["metadata"] = {
            "type": "string",
            "pattern": rf"^{sign}[0-9]{{1,{digits}}}(\.[0-9]{{1,{places}}})?$",
            "example": "1234.50",
            **kwargs.get("metadata", {}),
        }
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return format(Decimal(value), "f")  # never "1E+5", even for data stored before

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, (float, int, Decimal)) and not isinstance(value, bool):
            raise self.make_error("float")
        if not isinstance(value, str):
            raise self.make_error("invalid")
        text = value.strip()
        if len(text) > 64:
            raise self.make_error("invalid")
        if "e" in text.lower() and _AMOUNT.fullmatch(text.lower().split("e")[0]):
            raise self.make_error("exponent")
        if not _AMOUNT.fullmatch(text):
            raise self.make_error("invalid")
        amount = Decimal(text)
        if amount < 0 and not self.allow_negative:
            raise self.make_error("negative")
        if abs(amount) >= money.MAX_AMOUNT:
            raise self.make_error("too_large", maximum=f"{money.MAX_AMOUNT:f}")
        if -amount.as_tuple().exponent > self.places:
            raise self.make_error("places", places=self.places)
        return amount


_AMOUNT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class CurrencyAmounts(Schema):
    """Base of schemas that carry an amount with its currency: when both are given, the
    amount must have at most the currency's minor units and is given exactly that many
    ("100.5" CNY -> "100.50"; 100.5 JPY and 0.001 CNY are refused). `currency_of` maps
    each amount field to its currency field."""

    currency_of = {"amount": "currency"}
    # whether an amount may come without its currency (a patch keeps the stored one; the
    # domain then checks the pair); only documentation here, the OpenAPI says so
    amount_alone = False

    @post_load
    def _amounts_in_currency(self, data, **kwargs):
        errors = {}
        for amount_key, currency_key in self.currency_of.items():
            amount, currency = data.get(amount_key), data.get(currency_key)
            if amount is None or currency is None:
                continue
            try:
                data[amount_key] = money.in_currency(amount, currency)
            except ValueError as exc:
                errors[amount_key] = [str(exc)]
        if errors:
            raise ValidationError(errors)
        return data


class _IsoCode(fields.String):
    """An ISO code of fixed length, upper-cased and looked up."""

    length = 0
    default_error_messages = {"code": "Not a valid code."}

    def lookup(self, code):
        raise NotImplementedError

    def _deserialize(self, value, attr, data, **kwargs):
        code = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if len(code) != self.length or not self.lookup(code):
            raise self.make_error("code")
        return code


class Currency(_IsoCode):
    """An ISO 4217 code of a tender currency (not XXX, XAU, XTS, funds…: kit.money)."""

    length = 3
    default_error_messages = {"code": "Not an ISO 4217 code of a tender currency."}

    def __init__(self, **kwargs):
        # a nullable code's enum lists null too: OpenAPI 3.0 validators check enum first
        codes = sorted(money.TENDER) + ([None] if kwargs.get("allow_none") else [])
        kwargs["metadata"] = {"enum": codes, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def lookup(self, code):
        return code in money.TENDER


class Country(_IsoCode):
    """An ISO 3166-1 alpha-2 country code."""

    length = 2
    default_error_messages = {"code": "Not an ISO 3166-1 alpha-2 country code."}

    def __init__(self, **kwargs):
        codes = sorted(c.alpha_2 for c in pycountry.countries)
        codes += [None] if kwargs.get("allow_none") else []  # as Currency's
        kwargs["metadata"] = {"enum": codes, **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def lookup(self, code):
        return pycountry.countries.get(alpha_2=code) is not None


_PLUS_AS_SPACE = re.compile(r"(?<=\d) (\d\d(?::?\d\d)?)$")


class UtcDateTime(fields.AwareDateTime):
    """RFC 3339 in and out, stored as UTC. Input must carry its offset: a bare
    "2026-12-01T10:00:00" is 10:00 somewhere, and guessing UTC put Beijing meetings
    eight hours late."""

    default_error_messages = {
        "invalid_awareness": "Give a time zone offset, e.g. 2026-12-01T10:00:00+08:00.",
        "range": "Out of range: in UTC this time falls before year 1 or after year 9999.",
    }

    def __init__(self, **kwargs):
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            # an unencoded '+' in a query string arrives as a space: ?to=...T10:00:00+08:00
            value = _PLUS_AS_SPACE.sub(r"+\1", value.strip())
        value = super()._deserialize(value, attr, data, **kwargs)
        try:
            return to_utc(value)
        except OverflowError:
            # a valid local time can lie outside datetime's years in UTC: 9999-12-31T23:00-08:00
            raise self.make_error("range") from None

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return rfc3339(value)


def Integer(**kwargs):  # noqa: N802 - a field factory, used like a field class
    """An integer field for JSON bodies: 1.5 (a Decimal here), "2" and true are refused,
    never truncated."""
    return fields.Integer(strict=True, **kwargs)


# Custom-field keys: Unicode letters and digits (行业, Budget_2026), '_', '-' and spaces,
# starting with a letter, digit or '_'. MongoDB (FerretDB v1 even more) refuses '.' and a
# leading '$', so neither is a key character.
CUSTOM_KEY = re.compile(r"\w[\w \-]{0,63}")


class CustomFields(fields.Dict):
    """Custom fields: bounded count, key length and value size, one key rule everywhere.

    Values are strings, integers, booleans or null (null removes a field in a patch);
    JSON decimals are kept as their exact digits in a string ("12.5")."""

    default_error_messages = {
        "count": "At most {count} custom fields.",
        "key": "Keys are 1-64 letters, digits, '_', '-' or spaces, not starting with a "
               "space or '-' (no '.' or '$').",
        "value": "Custom values are strings, numbers, booleans, lists of strings or null.",
        "long": "At most {chars} characters.",
    }

    def __init__(self, *, max_fields=50, max_chars=1000, max_list=200, **kwargs):
        self.max_fields = max_fields
        self.max_chars = max_chars
        self.max_list = max_list
        kwargs["metadata"] = {
            "maxProperties": max_fields,
            # anyOf: an integer is a number too; a JSON decimal is kept as its digits
            "additionalProperties": {"nullable": True, "anyOf": [
                {"type": "string", "maxLength": max_chars},
                {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
                {"type": "number"},
                {"type": "boolean"},
                {"type": "array", "maxItems": max_list,
                 "items": {"type": "string", "maxLength": max_chars}}]},
            **kwargs.get("metadata", {}),
        }
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if len(value) > self.max_fields:
            raise self.make_error("count", count=self.max_fields)
        out, errors = {}, {}
        for key, item in value.items():
            if not isinstance(key, str) or not CUSTOM_KEY.fullmatch(key):
                errors[key] = [self.error_messages["key"]]
                continue
            if isinstance(item, Decimal):
                if not item.is_finite() or abs(item.adjusted()) > self.max_chars:
                    errors[key] = [self.error_messages["value"]]
                    continue
                item = format(item, "f")
            if isinstance(item, str) and len(item) > self.max_chars:
                errors[key] = [self.error_messages["long"].format(chars=self.max_chars)]
            elif item is None or isinstance(item, (str, int, bool)):
                out[key] = item
            elif isinstance(item, list) and len(item) <= self.max_list and all(
                    isinstance(v, str) and len(v) <= self.max_chars for v in item):
                out[key] = item  # a multi-picklist's option keys (kit.customfields)
            else:
                errors[key] = [self.error_messages["value"]]
        if errors:
            raise ValidationError(errors)
        return out


# One character that is no space to Python nor to the ECMA regexes of JSON Schema (Python
# counts \x1c-\x1f and \x85 as spaces, ECMA counts \ufeff), so the OpenAPI pattern and
# this check agree on what "blank" is.
NOT_BLANK = r"[^\s\x1c-\x1f\x85\ufeff]"
_NOT_BLANK = re.compile(NOT_BLANK)


def validate_not_blank(value):
    if not _NOT_BLANK.search(str(value)):
        raise ValidationError("Must not be blank.")


class JsonBoolean(fields.Boolean):
    """true or false only: marshmallow's Boolean also takes 0, 1, "yes"... which the
    OpenAPI document (type boolean) calls invalid. Query strings keep fields.Boolean."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value
