"""Typed custom fields (kit.customfields): definitions and values, one case per rule."""
import pytest

from kit import customfields as CF

LABELS = {"en": "Seats", "zh-CN": "席位"}
OPTIONS = [{"key": "a"}, {"key": "b"}]


@pytest.mark.parametrize("definition,value,stored", [
    ({"type": "text"}, "x", "x"),
    ({"type": "number"}, 3, 3),
    ({"type": "number", "min": "0", "max": "5"}, "2.50", "2.50"),
    ({"type": "money", "currency": "CNY"}, "3", "3.00"),
    ({"type": "money", "currency": "JPY"}, "300", "300"),
    ({"type": "date"}, "2026-02-28", "2026-02-28"),
    ({"type": "boolean"}, False, False),
    ({"type": "picklist", "options": OPTIONS}, "b", "b"),
    ({"type": "multi_picklist", "options": OPTIONS}, [], []),
])
def test_good_values(definition, value, stored):
    assert CF.check_value({"key": "f", **definition}, value) == stored


@pytest.mark.parametrize("definition,value", [
    ({"type": "text", "max_length": 1}, "xy"),
    ({"type": "text"}, 1),
    ({"type": "number"}, True),
    ({"type": "number"}, "NaN"),
    ({"type": "number", "min": "0"}, -1),
    ({"type": "money", "currency": "CNY"}, "1.001"),
    ({"type": "money", "currency": "CNY"}, "-1"),
    ({"type": "money", "currency": "CNY"}, "1e3"),
    ({"type": "money", "currency": "CNY"}, 5),
    ({"type": "date"}, "2026-02-30"),
    ({"type": "date"}, "2026-2-1"),
    ({"type": "boolean"}, 0),
    ({"type": "picklist", "options": OPTIONS}, ["a"]),
    ({"type": "multi_picklist", "options": OPTIONS}, ["a", "c"]),
    ({"type": "multi_picklist", "options": OPTIONS}, "a"),
])
def test_bad_values(definition, value):
    with pytest.raises(ValueError):
        CF.check_value({"key": "f", **definition}, value)


def test_undefined_and_null_values_pass_as_they_are():
    values, errors = CF.check_values({"f": {"key": "f", "type": "boolean"}},
                                     {"f": None, "free": "x", "g": 1})
    assert values == {"f": None, "free": "x", "g": 1} and errors == {}


@pytest.mark.parametrize("definition,field", [
    ({"key": "1x", "type": "text", "labels": LABELS}, "key"),
    ({"key": "name", "type": "text", "labels": LABELS}, "key"),
    ({"key": "x", "type": "text", "labels": {"en": "X"}}, "labels"),
    ({"key": "x", "type": "picklist", "labels": LABELS}, "options"),
    ({"key": "x", "type": "picklist", "labels": LABELS, "options": [{"key": "a"}] * 2},
     "options"),
    ({"key": "x", "type": "text", "labels": LABELS, "options": OPTIONS}, "options"),
    ({"key": "x", "type": "money", "labels": LABELS, "currency": "XXX"}, "currency"),
    ({"key": "x", "type": "number", "labels": LABELS, "min": "5", "max": "1"}, "min"),
])
def test_bad_definitions(definition, field):
    assert field in CF.definition_errors(definition, reserved=("name",))
