"""Forecast arithmetic: pure Decimal sums over open deals, no I/O.

Definitions (per close period, owner and currency):
- weighted: the sum of amount × probability / 100 over the open deals;
- best_case: the sum of the amounts of the open deals (every open deal closes as won);
- deals: how many open deals count.
Open deals without an amount, a currency or an expected close date cannot be placed and are
counted in `unplaced`. Sums are exact and quantized once, to the currency's minor unit with
ROUND_HALF_EVEN, so a total may differ from the sum of its rounded rows by a minor unit.
Amounts in different currencies are never added together.
"""
from decimal import ROUND_HALF_EVEN, Decimal

PERIODS = ("month", "quarter")

# ISO 4217 minor units that are not 2 (the common case).
MINOR_UNITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}
HUNDRED = Decimal(100)


def quantize(amount, currency):
    exponent = Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2))
    return amount.quantize(exponent, rounding=ROUND_HALF_EVEN)


def period_key(day, period):
    if period == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year}-{day.month:02d}"


def weighted(amount, probability):
    return amount * Decimal(probability) / HUNDRED


def forecast(deals, period="month"):
    """Rows per (period, owner, currency) and totals per (period, currency)."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}")
    rows, totals, unplaced = {}, {}, 0
    for deal in deals:
        amount, currency, close = deal.get("amount"), deal.get("currency"), \
            deal.get("expected_close")
        if amount is None or not currency or close is None:
            unplaced += 1
            continue
        when = period_key(close, period)
        for table, key in ((rows, (when, deal.get("owner_id"), currency)),
                           (totals, (when, currency))):
            acc = table.setdefault(key, [Decimal(0), Decimal(0), 0])
            acc[0] += weighted(amount, deal["probability"])
            acc[1] += amount
            acc[2] += 1

    def out(key, acc, names):
        currency = key[-1]
        return {**dict(zip(names, key, strict=True)), "deals": acc[2],
                "weighted": quantize(acc[0], currency), "best_case": quantize(acc[1], currency)}

    def order(key):
        return tuple("" if k is None else k for k in key)

    return {
        "period": period,
        "rows": [out(k, rows[k], ("period", "owner_id", "currency"))
                 for k in sorted(rows, key=order)],
        "totals": [out(k, totals[k], ("period", "currency")) for k in sorted(totals)],
        "unplaced": unplaced,
    }
