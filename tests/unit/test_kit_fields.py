"""Contract fields: money as Decimal strings (never float) with the currency's minor units,
tender ISO codes, UTC times with an explicit offset, strict integers, bounded custom
fields."""
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from marshmallow import Schema, ValidationError

from kit import money
from kit.fields import (
    NOT_BLANK,
    Country,
    Currency,
    CurrencyAmounts,
    CustomFields,
    Integer,
    Money,
    UtcDateTime,
    validate_not_blank,
)


class Sample(Schema):
    amount = Money(places=2)
    currency = Currency()
    country = Country()
    at = UtcDateTime()
    count = Integer()
    custom = CustomFields(allow_none=True)


class Priced(CurrencyAmounts):
    amount = Money()
    currency = Currency()


def refused(schema, body):
    with pytest.raises(ValidationError) as err:
        schema.load(body)
    return err.value.messages


@pytest.mark.parametrize("value, expected", [
    ("1234.50", Decimal("1234.50")), (" 7 ", Decimal("7")), ("0.10", Decimal("0.10")),
    ("999999999999999.99", Decimal("999999999999999.99")),
])
def test_money_loads_exact_decimals(value, expected):
    loaded = Sample().load({"amount": value})["amount"]
    assert loaded == expected and isinstance(loaded, Decimal)


NOT_AMOUNT = 'Not a valid amount: give a decimal string such as "1234.50".'
NO_EXPONENT = 'Write amounts without an exponent: "100000", not "1e5".'
NOT_NUMBER = 'Amounts are decimal strings such as "1234.50", not JSON numbers.'


@pytest.mark.parametrize("value, message", [
    (12.5, NOT_NUMBER), (12, NOT_NUMBER), (Decimal("12.5"), NOT_NUMBER),
    ("12,5", NOT_AMOUNT), ("NaN", NOT_AMOUNT), ("Infinity", NOT_AMOUNT), (True, NOT_AMOUNT),
    ("1" * 65, NOT_AMOUNT), ("0x10", NOT_AMOUNT), ("", NOT_AMOUNT),
    ("1e30", NO_EXPONENT), ("1e5", NO_EXPONENT), ("1E+5", NO_EXPONENT), ("2.5e-3", NO_EXPONENT),
    ("-1", "Must not be negative."),
    ("1.001", "At most 2 decimal places."),
    ("1000000000000000", "Must be less than 1000000000000000."),
])
def test_money_refuses(value, message):
    assert refused(Sample(), {"amount": value}) == {"amount": [message]}


@pytest.mark.parametrize("stored, shown", [
    (Decimal("10.00"), "10.00"), (Decimal("1E+5"), "100000"), ("1E+5", "100000"),
])
def test_money_dumps_as_plain_string(stored, shown):
    assert Sample().dump({"amount": stored}) == {"amount": shown}


@pytest.mark.parametrize("amount, currency, expected", [
    ("100.50", "CNY", "100.50"), ("100.5", "CNY", "100.50"), ("100", "CNY", "100.00"),
    ("100", "JPY", "100"), ("1.234", "BHD", "1.234"), ("7", "KWD", "7.000"),
])
def test_amounts_get_exactly_the_currency_minor_units(amount, currency, expected):
    loaded = Priced().load({"amount": amount, "currency": currency})["amount"]
    assert str(loaded) == expected


@pytest.mark.parametrize("amount, currency, message", [
    ("0.001", "CNY", "CNY amounts have at most 2 decimal places."),
    ("100.5", "JPY", "JPY amounts have no decimal places."),
    ("1.0001", "BHD", "BHD amounts have at most 3 decimal places."),
])
def test_amounts_with_more_places_than_the_currency_are_refused(amount, currency, message):
    assert refused(Priced(), {"amount": amount, "currency": currency}) == {"amount": [message]}


def test_minor_units_come_from_iso_4217_not_cldr():
    # CLDR (babel) says 0 for these three; ISO 4217 says 2
    assert [money.MINOR_UNITS[c] for c in ("IQD", "IRR", "LAK")] == [3, 2, 2]


@pytest.mark.parametrize("field, value, expected", [
    ("currency", "eur", "EUR"), ("currency", "CNY", "CNY"), ("currency", "XAF", "XAF"),
    ("country", "cn", "CN"), ("country", "DE", "DE"),
])
def test_iso_codes_are_normalised(field, value, expected):
    assert Sample().load({field: value})[field] == expected


@pytest.mark.parametrize("field, value", [
    ("currency", "EURO"), ("currency", "XYZ"), ("currency", "XXX"), ("currency", "XAU"),
    ("currency", "XTS"), ("currency", "XDR"), ("currency", "XAD"), ("currency", "CLF"),
    ("currency", "USN"), ("country", "XX"), ("country", "DEU"),
])
def test_iso_codes_are_checked(field, value):
    assert field in refused(Sample(), {field: value})


@pytest.mark.parametrize("value, expected", [
    ("2026-11-26T12:00:00Z", datetime(2026, 11, 26, 12, tzinfo=timezone.utc)),
    ("2026-11-26T14:00:00+02:00", datetime(2026, 11, 26, 12, tzinfo=timezone.utc)),
    ("2026-12-01T10:00:00+08:00", datetime(2026, 12, 1, 2, tzinfo=timezone.utc)),
    ("2026-12-01T10:00:00 08:00", datetime(2026, 12, 1, 2, tzinfo=timezone.utc)),
])
def test_times_are_utc_aware(value, expected):
    loaded = Sample().load({"at": value})["at"]
    assert loaded == expected and loaded.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", ["2026-12-01T10:00:00", "2026-12-01T10:00:00.123"])
def test_times_without_an_offset_are_refused(value):
    assert refused(Sample(), {"at": value}) == {
        "at": ["Give a time zone offset, e.g. 2026-12-01T10:00:00+08:00."]}


OUT_OF_RANGE = "Out of range: in UTC this time falls before year 1 or after year 9999."


@pytest.mark.parametrize("value", [
    "9999-12-31T23:59:59-08:00", "9999-12-31T16:00:00-08:00", "0001-01-01T00:00:00+08:00",
    "0001-01-01T07:59:59.999+08:00",
])
def test_times_past_the_years_in_utc_are_refused(value):
    assert refused(Sample(), {"at": value}) == {"at": [OUT_OF_RANGE]}


@pytest.mark.parametrize("value, expected", [
    ("9999-12-31T15:59:59-08:00", datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
    ("0001-01-01T08:00:00+08:00", datetime(1, 1, 1, tzinfo=timezone.utc)),
    ("9999-12-31T23:59:59Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
])
def test_times_at_the_edges_of_the_years_load(value, expected):
    assert Sample().load({"at": value})["at"] == expected


def test_times_dump_as_rfc3339_utc():
    at = datetime(2026, 11, 26, 14, tzinfo=timezone(timedelta(hours=2)))
    assert Sample().dump({"at": at}) == {"at": "2026-11-26T12:00:00.000Z"}


@pytest.mark.parametrize("value", [Decimal("1.5"), Decimal("2.0"), "2", True, 1.5])
def test_integers_are_strict(value):
    assert refused(Sample(), {"count": value}) == {"count": ["Not a valid integer."]}


@pytest.mark.parametrize("custom, expected", [
    ({"行业": "制造", "预算": 100}, {"行业": "制造", "预算": 100}),
    ({"Budget_2026": Decimal("12.50"), "vip": True, "gone": None},
     {"Budget_2026": "12.50", "vip": True, "gone": None}),
    ({"_x": "a" * 1000, "a b-c": "ok"}, {"_x": "a" * 1000, "a b-c": "ok"}),
])
def test_custom_fields_accept_unicode_keys_and_scalars(custom, expected):
    assert Sample().load({"custom": custom})["custom"] == expected


KEY_RULE = ("Keys are 1-64 letters, digits, '_', '-' or spaces, not starting with a space "
            "or '-' (no '.' or '$').")


VALUE_RULE = "Custom values are strings, numbers, booleans, lists of strings or null."


@pytest.mark.parametrize("custom, message", [
    ({"a.b": 1}, {"a.b": [KEY_RULE]}),
    ({"$set": 1}, {"$set": [KEY_RULE]}),
    ({"": 1}, {"": [KEY_RULE]}),
    ({"-x": 1}, {"-x": [KEY_RULE]}),
    ({"k" * 65: 1}, {"k" * 65: [KEY_RULE]}),
    ({"x": "a" * 1001}, {"x": ["At most 1000 characters."]}),
    ({"x": "a" * (5 * 1024 * 1024)}, {"x": ["At most 1000 characters."]}),
    ({"x": [1]}, {"x": [VALUE_RULE]}),
    ({"x": {"y": 1}}, {"x": [VALUE_RULE]}),
    ({"x": Decimal("1e2000")}, {"x": [VALUE_RULE]}),
    ({f"k{i}": i for i in range(51)}, ["At most 50 custom fields."]),
])
def test_custom_fields_are_bounded(custom, message):
    assert refused(Sample(), {"custom": custom}) == {"custom": message}


@pytest.mark.parametrize("value, blank", [
    ("", True), ("  \t\n", True), ("\x1f", True), ("\x85", True), ("\ufeff", True),
    ("\u3000", True), ("a", False), (" 张 ", False),
])
def test_blank_means_the_same_to_the_check_and_to_the_openapi_pattern(value, blank):
    with_pattern = re.search(NOT_BLANK, value) is None
    try:
        validate_not_blank(value)
        checked = False
    except ValidationError:
        checked = True
    assert checked == with_pattern == blank
