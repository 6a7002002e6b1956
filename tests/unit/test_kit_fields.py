"""Contract fields: money as Decimal strings (never float), ISO codes, UTC times."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from marshmallow import Schema, ValidationError

from kit.fields import Country, Currency, Money, UtcDateTime


class Sample(Schema):
    amount = Money(places=2)
    currency = Currency()
    country = Country()
    at = UtcDateTime()


@pytest.mark.parametrize("value, expected", [
    ("1234.50", Decimal("1234.50")), (" 7 ", Decimal("7")), (12, Decimal("12")),
    (Decimal("0.10"), Decimal("0.10")),
])
def test_money_loads_exact_decimals(value, expected):
    loaded = Sample().load({"amount": value})["amount"]
    assert loaded == expected and isinstance(loaded, Decimal)


@pytest.mark.parametrize("value, message", [
    (12.5, "Amounts must be decimal strings, not floating-point numbers."),
    ("12,5", 'Not a valid amount: give a decimal string such as "1234.50".'),
    ("NaN", 'Not a valid amount: give a decimal string such as "1234.50".'),
    ("Infinity", 'Not a valid amount: give a decimal string such as "1234.50".'),
    (True, 'Not a valid amount: give a decimal string such as "1234.50".'),
    ("-1", "Must not be negative."),
    ("1.001", "At most 2 decimal places."),
])
def test_money_refuses(value, message):
    with pytest.raises(ValidationError) as err:
        Sample().load({"amount": value})
    assert err.value.messages == {"amount": [message]}


def test_money_dumps_as_string():
    assert Sample().dump({"amount": Decimal("10.00")}) == {"amount": "10.00"}


@pytest.mark.parametrize("field, value, expected", [
    ("currency", "eur", "EUR"), ("currency", "CNY", "CNY"),
    ("country", "cn", "CN"), ("country", "DE", "DE"),
])
def test_iso_codes_are_normalised(field, value, expected):
    assert Sample().load({field: value})[field] == expected


@pytest.mark.parametrize("field, value", [
    ("currency", "EURO"), ("currency", "XYZ"), ("country", "XX"), ("country", "DEU"),
])
def test_iso_codes_are_checked(field, value):
    with pytest.raises(ValidationError) as err:
        Sample().load({field: value})
    assert field in err.value.messages


@pytest.mark.parametrize("value, expected", [
    ("2026-11-26T12:00:00Z", datetime(2026, 11, 26, 12, tzinfo=timezone.utc)),
    ("2026-11-26T14:00:00+02:00", datetime(2026, 11, 26, 12, tzinfo=timezone.utc)),
    ("2026-11-26T12:00:00", datetime(2026, 11, 26, 12, tzinfo=timezone.utc)),
])
def test_times_are_utc_aware(value, expected):
    loaded = Sample().load({"at": value})["at"]
    assert loaded == expected and loaded.utcoffset() == timedelta(0)


def test_times_dump_as_rfc3339_utc():
    at = datetime(2026, 11, 26, 14, tzinfo=timezone(timedelta(hours=2)))
    assert Sample().dump({"at": at}) == {"at": "2026-11-26T12:00:00.000Z"}
