"""Capture input: the lead schema field by field, and CSV rows with their line numbers."""
from decimal import Decimal

import pytest
from marshmallow import ValidationError

from kit.errors import Invalid
from leads import csvimport
from leads.schemas import ActivityIn, ConvertIn, LeadIn, TaskIn

GOOD = {"name": "Ada", "email": "ada@example.com"}


@pytest.mark.parametrize("field,value", [
    ("name", ""), ("name", "   "), ("name", None), ("name", "x" * 201),
    ("email", "nope"), ("phone", "12"), ("phone", "+99 1"),
    ("country", "XX"), ("country", "DEU"), ("source", "fax"),
    ("utm", {"unknown": "x"}), ("utm", "cpc"),
    ("custom", {"$where": 1}), ("custom", {"a.b": 1}), ("custom", {"x": {"nested": 1}}),
    ("custom", {f"k{i}": i for i in range(51)}),
    ("owner_id", "ann"),
])
def test_each_bad_field_is_named(field, value):
    with pytest.raises(ValidationError) as err:
        LeadIn().load({**GOOD, field: value})
    assert field in err.value.messages


BEIJING_NAIVE = "2026-12-01T10:00:00"


@pytest.mark.parametrize("schema, body, field, message", [
    (LeadIn, {**GOOD, "phone": "12345", "country": "CN"}, "phone",
     "Not a valid phone number: Not a valid phone number."),
    (LeadIn, {**GOOD, "custom": {"x": "a" * 5_000_000}}, "custom",
     {"x": ["At most 1000 characters."]}),
    (ActivityIn, {"type": "call", "duration_minutes": Decimal("1.5")}, "duration_minutes",
     ["Not a valid integer."]),
    (ActivityIn, {"type": "call", "duration_minutes": "2"}, "duration_minutes",
     ["Not a valid integer."]),
    (ActivityIn, {"type": "call", "at": BEIJING_NAIVE}, "at",
     ["Give a time zone offset, e.g. 2026-12-01T10:00:00+08:00."]),
    (TaskIn, {"due_at": BEIJING_NAIVE}, "due_at",
     ["Give a time zone offset, e.g. 2026-12-01T10:00:00+08:00."]),
    (ConvertIn, {"amount": "0.001", "currency": "CNY"}, "amount",
     ["CNY amounts have at most 2 decimal places."]),
    (ConvertIn, {"amount": "100.5", "currency": "JPY"}, "amount",
     ["JPY amounts have no decimal places."]),
    (ConvertIn, {"amount": "1e30", "currency": "EUR"}, "amount",
     ['Write amounts without an exponent: "100000", not "1e5".']),
    (ConvertIn, {"amount": "1000000000000000", "currency": "EUR"}, "amount",
     ["Must be less than 1000000000000000."]),
    (ConvertIn, {"amount": "10", "currency": "XXX"}, "currency",
     ["Not an ISO 4217 code of a tender currency."]),
])
def test_edge_input_is_refused_naming_the_field(schema, body, field, message):
    with pytest.raises(ValidationError) as err:
        schema().load(body)
    messages = err.value.messages[field]
    assert messages == message or messages == [message]


@pytest.mark.parametrize("email", ["", "   "])
def test_a_blank_email_is_400_not_a_server_error(email):
    with pytest.raises(ValidationError) as err:
        LeadIn().load({**GOOD, "email": email})
    assert err.value.messages == {"email": ["Not a valid email address."]}


def test_chinese_custom_keys_and_canonical_amounts_are_accepted():
    lead = LeadIn().load({**GOOD, "custom": {"行业": "制造", "预算": "50万"}})
    assert lead["custom"] == {"行业": "制造", "预算": "50万"}
    assert str(ConvertIn().load({"amount": "100.5", "currency": "CNY"})["amount"]) == "100.50"
    at = ActivityIn().load({"type": "call", "at": BEIJING_NAIVE + "+08:00"})["at"]
    assert at.isoformat() == "2026-12-01T02:00:00+00:00"


def test_missing_name_is_named():
    with pytest.raises(ValidationError) as err:
        LeadIn().load({"email": "a@b.co"})
    assert "name" in err.value.messages


def test_loaded_lead_is_normalised():
    from decimal import Decimal
    data = LeadIn().load({"name": "张伟", "email": " Zhang@Example.CN ", "phone": "138 0013 8000",
                          "country": "cn", "company": "  ", "utm": {"source": " x ", "term": ""},
                          "custom": {"seats": Decimal("12.5"), "vip": True}})
    assert data["email"] == "zhang@example.cn" and data["phone"] == "+8613800138000"
    assert data["country"] == "CN" and data["company"] is None and data["source"] == "api"
    assert data["utm"] == {"source": "x"} and data["custom"] == {"seats": "12.5", "vip": True}


@pytest.mark.parametrize("body,field", [
    ({"amount": "10"}, "currency"), ({"amount": 1.5, "currency": "EUR"}, "amount"),
    ({"amount": "-1", "currency": "EUR"}, "amount"), ({"currency": "XYZ"}, "currency")])
def test_convert_body(body, field):
    with pytest.raises(ValidationError) as err:
        ConvertIn().load(body)
    assert field in err.value.messages


def test_csv_rows_keep_their_starting_line_and_map_columns():
    text = ("Name, EMAIL ,utm_source,Industry\n"
            "A,a@x.com,google,retail\n"
            "\n"
            '"B\nB",b@x.com,,\n'
            "C,c@x.com,,,surplus\n")
    rows, _ = csvimport.parse(text, 10)
    assert [line for line, _ in rows] == [2, 4, 6]
    assert rows[0][1] == {"source": "import", "name": "A", "email": "a@x.com",
                          "utm": {"source": "google"}, "custom": {"industry": "retail"}}
    assert rows[1][1]["name"] == "B\nB"
    assert rows[2][1]["_extra_cells"] == 1


def test_csv_decode_drops_the_bom():
    assert csvimport.decode("\ufeffname\n张伟\n".encode()) == ("name\n张伟\n", "utf-8")


@pytest.mark.parametrize("text", ["", "email\nx@y.z\n", "name\na\nb\nc\n"])
def test_csv_refused_as_a_whole(text):
    with pytest.raises(Invalid):
        csvimport.parse(text, 2)


def test_import_rows_are_validated_and_deduplicated_within_the_file():
    from leads import imports
    rows = [
        (2, {"name": "A", "email": "a@x.com", "source": "import"}),
        (3, {"name": "B", "email": "bad", "source": "import"}),
        (4, {"name": "C", "email": "A@X.com ", "source": "import"}),
        (5, {"name": "D", "phone": "+49 30 1234567", "source": "import"}),
        (6, {"name": "E", "email": "e@x.com", "phone": "+49301234567", "source": "import"}),
        (7, {"name": "F", "source": "import", "_extra_cells": 2}),
        (8, {"name": "G", "source": "import"}),
    ]
    errors, valid = imports.validate_rows(rows)
    fresh = imports.dedup_in_file(valid, errors)
    assert [line for line, _ in fresh] == [2, 5, 8]
    assert {e["line"]: e.get("duplicate_of_line") for e in errors} == {
        3: None, 4: 2, 6: 5, 7: None}


def test_import_row_ids_are_derived_from_key_and_line():
    from leads import imports
    assert imports.row_id("k", 2) == imports.row_id("k", 2)
    assert imports.row_id("k", 2) != imports.row_id("k", 3)
    assert imports.row_id(None, 2) != imports.row_id(None, 2)
