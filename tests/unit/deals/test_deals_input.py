"""Deal bodies at the edges: money in its currency's minor units, no exponents, tender codes,
strict integers, bounded custom fields with the kit's one key rule."""
from decimal import Decimal

import pytest
from marshmallow import ValidationError

from deals.schemas import DealIn, DealPatch, PipelineIn

DEAL = {"name": "Acme"}
KEY_RULE = ("Keys are 1-64 letters, digits, '_', '-' or spaces, not starting with a space "
            "or '-' (no '.' or '$').")
STAGES = [{"key": "a", "name": "A", "probability": 10},
          {"key": "won", "name": "Won", "probability": 100},
          {"key": "lost", "name": "Lost", "probability": 0}]


@pytest.mark.parametrize("schema, body, field, message", [
    (DealIn, {**DEAL, "amount": "0.001", "currency": "CNY"}, "amount",
     ["CNY amounts have at most 2 decimal places."]),
    (DealIn, {**DEAL, "amount": "100.5", "currency": "JPY"}, "amount",
     ["JPY amounts have no decimal places."]),
    (DealIn, {**DEAL, "amount": "1e30", "currency": "EUR"}, "amount",
     ['Write amounts without an exponent: "100000", not "1e5".']),
    (DealIn, {**DEAL, "amount": "1e5", "currency": "EUR"}, "amount",
     ['Write amounts without an exponent: "100000", not "1e5".']),
    (DealIn, {**DEAL, "amount": Decimal("128000"), "currency": "EUR"}, "amount",
     ['Amounts are decimal strings such as "1234.50", not JSON numbers.']),
    (DealIn, {**DEAL, "amount": "10", "currency": "XXX"}, "currency",
     ["Not an ISO 4217 code of a tender currency."]),
    (DealIn, {**DEAL, "currency": "XAU"}, "currency",
     ["Not an ISO 4217 code of a tender currency."]),
    (DealIn, {**DEAL, "custom": {"x": "a" * 5_000_000}}, "custom",
     {"x": ["At most 1000 characters."]}),
    (DealIn, {**DEAL, "custom": {"a.b": 1}}, "custom", {"a.b": [KEY_RULE]}),
    (DealIn, {**DEAL, "custom": {"$x": 1}}, "custom", {"$x": [KEY_RULE]}),
    (DealPatch, {"amount": "1.001", "currency": "USD"}, "amount",
     ["USD amounts have at most 2 decimal places."]),
    (DealPatch, {"probability": Decimal("50.5")}, "probability", ["Not a valid integer."]),
    (DealPatch, {"custom": {f"k{i}": i for i in range(51)}}, "custom",
     ["At most 50 custom fields."]),
    (PipelineIn, {"name": "P", "stages": [{**STAGES[0], "stall_days": Decimal("1.5")},
                                          *STAGES[1:]]},
     "stages", {0: {"stall_days": ["Not a valid integer."]}}),
])
def test_edge_input_is_refused_naming_the_field(schema, body, field, message):
    with pytest.raises(ValidationError) as err:
        schema().load(body)
    assert err.value.messages[field] == message


@pytest.mark.parametrize("amount, currency, expected", [
    ("100.50", "CNY", "100.50"), ("100.5", "CNY", "100.50"), ("128000", "JPY", "128000"),
    ("1.5", "KWD", "1.500"),
])
def test_amounts_are_canonical_in_their_currency(amount, currency, expected):
    deal = DealIn().load({**DEAL, "amount": amount, "currency": currency})
    assert str(deal["amount"]) == expected


def test_custom_fields_take_chinese_keys_and_null_removes_in_a_patch():
    assert DealIn().load({**DEAL, "custom": {"行业": "制造"}})["custom"] == {"行业": "制造"}
    assert DealPatch().load({"custom": {"行业": None}})["custom"] == {"行业": None}
