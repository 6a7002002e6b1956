"""Quote and contract KPIs from facts: current status by the highest sequence (a revision
is a draft again), the latest submission's discount, contracted and collected revenue."""
from decimal import Decimal

from metrics import quotes_kpis as Q


def key(name, *labels):
    return (name, labels)


def as_dict(series):
    out = {}
    for i in range(0, len(series), 2):
        out[series[i]] = out.get(series[i], 0) + series[i + 1]
    return out


def test_a_revised_quote_is_a_draft_and_counts_its_latest_discount():
    got = as_dict(Q.quote_series([
        {"type": "quote.created", "seq": 1},
        {"type": "quote.submitted", "seq": 2, "discount_percent": "30.00"},
        {"type": "quote.rejected", "seq": 3},
        {"type": "quote.created", "seq": 4},
        {"type": "quote.submitted", "seq": 5, "discount_percent": "12.50"},
        {"type": "quote.approved", "seq": 6},
        {"type": "quote.created", "seq": 7}], key))
    assert got == {key("quotes_current", "draft"): 1,
                   key("quote_discount_percent_sum"): Decimal("12.50"),
                   key("quote_discount_quotes"): 1}


def test_contracted_and_collected_revenue_per_currency():
    got = as_dict(Q.contract_series([
        {"type": "contract.created", "seq": 1},
        {"type": "contract.signed", "seq": 2, "amount": "1000.00", "currency": "CNY"},
        {"type": "payment.received", "seq": 3, "paid": "300.00", "currency": "CNY"},
        {"type": "payment.received", "seq": 4, "paid": "700.00", "currency": "CNY"},
        {"type": "contract.fully_paid", "seq": 5}], key))
    assert got == {key("contracts_current", "fully_paid"): 1,
                   key("contracted_amount", "CNY"): Decimal("1000.00"),
                   key("collected_amount", "CNY"): Decimal("1000.00")}


def test_a_voided_contract_contracts_nothing():
    got = as_dict(Q.contract_series([{"type": "contract.created", "seq": 1},
                                     {"type": "contract.voided", "seq": 2}], key))
    assert got == {key("contracts_current", "voided"): 1}
