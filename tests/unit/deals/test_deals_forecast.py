"""Forecast arithmetic: Decimal, weighted by probability, rounded once per currency."""
import datetime as dt
from decimal import Decimal

import pytest

from deals import forecast as F


def deal(amount, probability, close="2025-03-15", owner="u1", currency="EUR"):
    return {"amount": None if amount is None else Decimal(amount), "probability": probability,
            "expected_close": dt.date.fromisoformat(close) if close else None,
            "owner_id": owner, "currency": currency}


@pytest.mark.parametrize(("deals", "weighted", "best_case"), [
    ([deal("1000.00", 50)], "500.00", "1000.00"),
    ([deal("1000.00", 50), deal("200.00", 10)], "520.00", "1200.00"),
    ([deal("0.10", 33)], "0.03", "0.10"),                           # 0.033 -> 0.03
    ([deal("0.05", 50)], "0.02", "0.05"),                           # 0.025 -> 0.02 (half even)
    ([deal("0.07", 50)], "0.04", "0.07"),                           # 0.035 -> 0.04 (half even)
    ([deal("0.05", 50), deal("0.05", 50)], "0.05", "0.10"),         # summed, then rounded
    ([deal("99.99", 0)], "0.00", "99.99"),
    ([deal("1234.5678", 100)], "1234.57", "1234.57"),
    ([deal("1001", 25, currency="JPY")], "250", "1001"),            # 250.25 -> 250
    ([deal("1.0005", 50, currency="KWD")], "0.500", "1.000"),     # 3 minor units; 1.0005 -> 1.000
])
def test_weighted_and_best_case(deals, weighted, best_case):
    [row] = F.forecast(deals)["rows"]
    assert row["weighted"] == Decimal(weighted) and str(row["weighted"]) == weighted
    assert row["best_case"] == Decimal(best_case) and str(row["best_case"]) == best_case


def test_rows_per_month_owner_and_currency_and_totals_per_month_and_currency():
    deals = [deal("100", 50, "2025-03-01", "u1"), deal("300", 10, "2025-03-31", "u2"),
             deal("50", 20, "2025-04-02", "u1"), deal("70", 100, "2025-03-10", "u1", "USD"),
             deal("10", 50, "2025-03-05", None)]
    result = F.forecast(deals, "month")
    rows = [(r["period"], r["owner_id"], r["currency"], r["deals"], str(r["weighted"]),
             str(r["best_case"])) for r in result["rows"]]
    assert rows == [
        ("2025-03", None, "EUR", 1, "5.00", "10.00"),
        ("2025-03", "u1", "EUR", 1, "50.00", "100.00"),
        ("2025-03", "u1", "USD", 1, "70.00", "70.00"),
        ("2025-03", "u2", "EUR", 1, "30.00", "300.00"),
        ("2025-04", "u1", "EUR", 1, "10.00", "50.00"),
    ]
    totals = [(t["period"], t["currency"], t["deals"], str(t["weighted"]), str(t["best_case"]))
              for t in result["totals"]]
    assert totals == [("2025-03", "EUR", 3, "85.00", "410.00"),
                      ("2025-03", "USD", 1, "70.00", "70.00"),
                      ("2025-04", "EUR", 1, "10.00", "50.00")]


@pytest.mark.parametrize(("close", "period", "key"), [
    ("2025-01-31", "month", "2025-01"),
    ("2025-12-01", "month", "2025-12"),
    ("2025-03-31", "quarter", "2025-Q1"),
    ("2025-04-01", "quarter", "2025-Q2"),
    ("2025-12-31", "quarter", "2025-Q4"),
])
def test_periods(close, period, key):
    assert F.forecast([deal("1", 10, close)], period)["rows"][0]["period"] == key


@pytest.mark.parametrize("unplaceable", [
    deal(None, 50), deal("10", 50, close=None), deal("10", 50, currency=None)])
def test_deals_without_amount_currency_or_close_date_are_counted_apart(unplaceable):
    result = F.forecast([unplaceable, deal("10", 50)])
    assert result["unplaced"] == 1 and len(result["rows"]) == 1


def test_unknown_period_is_refused():
    with pytest.raises(ValueError):
        F.forecast([], "week")
