"""Input fields of the quotes API that Decimal() or a dict would take too loosely: a line's
quantity (ASCII decimals or JSON numbers only) and a product's prices and unit."""
from decimal import Decimal

import pytest
from marshmallow import Schema, ValidationError

from quotes.schemas import Quantity


class Line(Schema):
    quantity = Quantity(required=True)


@pytest.mark.parametrize("given", ["1_0", "１２", "٣", "1.5e2", "+2", " ", "", "1.", ".5",
                                   "NaN", "Infinity", True])
def test_a_quantity_that_is_not_plain_decimal_digits_is_refused(given):
    with pytest.raises(ValidationError) as err:
        Line().load({"quantity": given})
    assert "quantity" in err.value.messages


@pytest.mark.parametrize(("given", "stored"), [
    ("2", Decimal("2")), (" 1.5 ", Decimal("1.5")), ("0.001", Decimal("0.001")),
    (Decimal("3"), Decimal("3")), (4, Decimal("4"))])
def test_plain_decimals_and_json_numbers_are_quantities(given, stored):
    assert Line().load({"quantity": given})["quantity"] == stored


# --- the price book's product (quotes.schemas.ProductIn) ---------------------------------------

PRODUCT = {"code": "P-1", "name_zh": "产品", "name_en": "Product", "unit": "pcs",
           "prices": {"CNY": "100.00"}, "tax_rate": 13}


@pytest.mark.parametrize(("change", "field"), [
    ({"prices": {"usd": "1", "USD": "2"}}, "prices"),
    ({"prices": {"CNY": "1", " cny": "2"}}, "prices"),
    ({"unit": "   "}, "unit"),
])
def test_a_product_that_says_one_thing_twice_or_nothing_is_refused(change, field):
    from quotes.schemas import ProductIn
    with pytest.raises(ValidationError) as err:
        ProductIn().load({**PRODUCT, **change})
    assert field in err.value.messages


def test_a_product_with_one_price_per_currency_loads():
    from quotes.schemas import ProductIn
    loaded = ProductIn().load({**PRODUCT, "prices": {"usd": "1", "CNY": "7"}})
    assert loaded["prices"] == {"USD": Decimal("1"), "CNY": Decimal("7")}
