"""Quote pricing: Decimal only, half-up per line, totals that are the exact sums of the
rounded lines (property tests over random quotes in CNY, USD, EUR and JPY)."""
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kit.errors import Invalid
from kit.money import MINOR_UNITS
from quotes.pricing import allocate, price

D = Decimal
CURRENCIES = ("CNY", "USD", "EUR", "JPY")


def line(quantity, unit_price, tax_rate=13, **discount):
    return {"quantity": D(quantity), "unit_price": D(unit_price), "tax_rate": D(tax_rate),
            **{k: D(v) for k, v in discount.items()}}


def test_a_line_is_rounded_half_up_to_the_minor_unit():
    result = price([line("3", "0.125", 13)], "CNY")
    [priced] = result["lines"]
    assert priced["gross"] == D("0.38")  # 0.375 -> 0.38 (half-up, not half-even)
    assert priced["tax"] == D("0.05")  # 0.0494 -> 0.05
    assert (result["subtotal"], result["discount"], result["tax"], result["total"]) == \
        (D("0.38"), D("0.00"), D("0.05"), D("0.43"))


def test_jpy_has_no_minor_units():
    result = price([line("1", "1005", 10, discount_percent="5")], "JPY")
    assert result["lines"][0]["line_discount"] == D("50")  # 50.25 -> 50
    assert result["total"] == D("1051")  # 955 + 95.5 -> 96


def test_a_quote_discount_is_shared_over_the_lines_to_the_cent():
    result = price([line("1", "100.00", 13), line("1", "200.00", 6)], "CNY",
                   discount_amount=D("10.00"))
    shares = [p["quote_discount"] for p in result["lines"]]
    assert shares == [D("3.33"), D("6.67")] and sum(shares) == D("10.00")
    assert [p["tax"] for p in result["lines"]] == [D("12.57"), D("11.60")]
    assert result == {**result, "subtotal": D("300.00"), "discount": D("10.00"),
                      "tax": D("24.17"), "total": D("314.17"),
                      "discount_percent": D("3.33")}


def test_allocation_breaks_ties_towards_earlier_lines():
    assert allocate(D("0.02"), [D(1), D(1), D(1)], "EUR") == [D("0.01"), D("0.01"), D("0.00")]


@pytest.mark.parametrize(("lines", "kwargs", "field"), [
    ([line("1", "10.00", discount_amount="10.01")], {}, "lines"),
    ([line("1", "10.00", discount_amount="1", discount_percent="1")], {}, "lines"),
    ([line("1", "10.00")], {"discount_amount": D("10.01")}, "discount_amount"),
    ([line("1", "10.00")], {"discount_amount": D("1"), "discount_percent": D("1")},
     "discount_amount"),
])
def test_discounts_beyond_the_amount_or_doubled_are_refused(lines, kwargs, field):
    with pytest.raises(Invalid) as caught:
        price(lines, "EUR", **kwargs)
    assert field in caught.value.extra["errors"]


def amounts(places):
    return st.decimals(min_value=0, max_value=D("99999.9999"), places=places,
                       allow_nan=False, allow_infinity=False)


@st.composite
def quotes(draw):
    currency = draw(st.sampled_from(CURRENCIES))
    lines = []
    for _ in range(draw(st.integers(1, 12))):
        gross_bound = {}
        kind = draw(st.sampled_from(("none", "percent", "amount")))
        if kind == "percent":
            gross_bound["discount_percent"] = draw(amounts(2).filter(lambda d: d <= 100))
        item = {"quantity": draw(amounts(3).filter(lambda d: d <= 1000)),
                "unit_price": draw(amounts(4)),
                "tax_rate": D(draw(st.sampled_from((13, 9, 6, 0)))), **gross_bound}
        if kind == "amount":
            gross = (item["quantity"] * item["unit_price"]).quantize(D(1))
            item["discount_amount"] = D(draw(st.integers(0, max(0, int(gross) - 1))))
        lines.append(item)
    quote_kind = draw(st.sampled_from(("none", "percent", "amount")))
    kwargs = {}
    if quote_kind == "percent":
        kwargs["discount_percent"] = draw(amounts(2).filter(lambda d: d <= 100))
    elif quote_kind == "amount":
        kwargs["discount_amount"] = D(draw(st.integers(0, 50)))
    return currency, lines, kwargs


@settings(max_examples=300, deadline=None)
@given(quotes())
def test_totals_are_the_exact_sums_of_the_rounded_lines(quote):
    currency, lines, kwargs = quote
    try:
        result = price(lines, currency, **kwargs)
    except Invalid:  # a quote discount larger than what the lines left: refused, fine
        return
    places = MINOR_UNITS[currency]
    figures = ("gross", "line_discount", "quote_discount", "net", "tax", "total")
    for priced in result["lines"]:
        for key in figures:
            assert -priced[key].as_tuple().exponent == places, (key, priced[key])
            assert priced[key] >= 0
        assert priced["net"] == priced["gross"] - priced["line_discount"] - \
            priced["quote_discount"]
        assert priced["total"] == priced["net"] + priced["tax"]
    assert result["subtotal"] == sum(p["gross"] for p in result["lines"])
    assert result["discount"] == sum(p["line_discount"] + p["quote_discount"]
                                     for p in result["lines"])
    assert result["tax"] == sum(p["tax"] for p in result["lines"])
    assert result["total"] == sum(p["total"] for p in result["lines"])
    assert result["total"] == result["subtotal"] - result["discount"] + result["tax"]
    for key in ("subtotal", "discount", "tax", "total"):
        assert isinstance(result[key], D) and -result[key].as_tuple().exponent == places


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CURRENCIES), st.integers(0, 10**6),
       st.lists(st.decimals(min_value=0, max_value=10**6, places=2), min_size=1,
                max_size=20))
def test_allocation_adds_up_exactly(currency, units, weights):
    unit = D(1).scaleb(-MINOR_UNITS[currency])
    amount = D(units) * unit
    shares = allocate(amount, weights, currency)
    if sum(weights) == 0:
        assert all(s == 0 for s in shares)
    else:
        assert sum(shares) == amount
        assert all(s >= 0 for s in shares)
