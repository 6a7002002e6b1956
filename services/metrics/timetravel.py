"""KPIs as of a past moment, and the forecast back-test: pure functions of projections.

A projection keeps one fact per event with the event's `time` (domain.fact_from_event),
and every KPI is a function of the set of facts. So an entity as it was at moment T is
its projection with the facts of events that happened by T (`as_of`), and any KPI of it
is the KPI as of T, exactly: the same functions, fed an earlier set. ("Happened" is the
event's `time`, which is never later than its publication: what the service could have
known at T, short of the delivery delay.)

The weighted forecast (`forecast`) mirrors `dealflow_forecast_weighted_amount`: open
deals' amount x probability / 100 by expected close month (`unscheduled` without one) and
currency, here also by owner; sums are exact Decimals, quantized once per row to the
currency's minor unit (half to even). The back-test (`backtest`) puts next to each
(month, owner, currency) of the forecast as of T what was won afterwards: the deals won
as of `until` that were not won as of T, by the month of their `won_at`, the owner and
currency at their win, and the amount they were won with.
"""
from decimal import ROUND_HALF_EVEN, Decimal

from kit import money
from metrics.domain import _aware, _ordered, deal_summary

UNSCHEDULED = "unscheduled"
HUNDRED = Decimal(100)
ZERO = Decimal(0)


def as_of(doc, at):
    """The projection with only the facts of events that happened by `at`."""
    return {**doc, "facts": [f for f in doc.get("facts") or () if _aware(f["time"]) <= at]}


def quantize(amount, currency):
    places = money.MINOR_UNITS.get(currency, 2)
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def _owner(doc):
    """The owner of the highest-sequence fact that names one (None: unassigned)."""
    return next((f["owner_id"] for f in reversed(_ordered(doc)) if f.get("owner_id")), None)


def _month(expected_close):
    return (expected_close or "")[:7] or UNSCHEDULED


def _open(doc, rules):
    """(month, owner, currency, amount, weighted) of an open deal that has an amount and
    currency (the gauge's rule), else None."""
    s = deal_summary(doc, rules)
    if s["outcome"] is not None or s["amount"] is None or not s["currency"]:
        return None
    weighted = s["amount"] * Decimal(s["probability"] or 0) / HUNDRED
    return _month(s["expected_close"]), _owner(doc), s["currency"], s["amount"], weighted


def forecast(deal_docs, at, rules):
    """Rows per (month, owner, currency) and totals per (month, currency) of the deals
    open at `at`."""
    rows, totals = {}, {}
    for doc in deal_docs:
        deal = _open(as_of(doc, at), rules)
        if deal is None:
            continue
        month, owner, currency, amount, weighted = deal
        for table, key in ((rows, (month, owner, currency)), (totals, (month, currency))):
            acc = table.setdefault(key, [0, ZERO, ZERO])
            acc[0] += 1
            acc[1] += weighted
            acc[2] += amount
    return {
        "rows": [{"month": m, "owner_id": o, "currency": c, "deals": n,
                  "weighted": quantize(w, c), "best_case": quantize(b, c)}
                 for (m, o, c), (n, w, b) in sorted(rows.items(), key=_order)],
        "totals": [{"month": m, "currency": c, "deals": n, "weighted": quantize(w, c),
                    "best_case": quantize(b, c)}
                   for (m, c), (n, w, b) in sorted(totals.items())],
    }


def _won(doc, rules):
    """(month, owner, currency, amount) of a deal whose outcome is won, else None."""
    s = deal_summary(doc, rules)
    if s["outcome"] != "won":
        return None
    win = next(f for f in reversed(_ordered(doc)) if f["type"] == "deal.won")
    amount = Decimal(win["amount"]) if win.get("amount") is not None else s["amount"]
    currency = win.get("currency") or s["currency"]
    if amount is None or not currency:
        return None
    when = _aware(win.get("won_at") or win["time"])
    return f"{when.year}-{when.month:02d}", _owner(doc), currency, amount


def backtest(deal_docs, at, until, rules):
    """Per (month, owner, currency): the weighted forecast as of `at` and what was won
    after it, up to `until`."""
    rows = {}

    def row(key):
        return rows.setdefault(key, {"forecast_deals": 0, "weighted": ZERO,
                                     "best_case": ZERO, "won_deals": 0, "won": ZERO})

    for doc in deal_docs:
        then = as_of(doc, at)
        deal = _open(then, rules)
        if deal is not None:
            month, owner, currency, amount, weighted = deal
            acc = row((month, owner, currency))
            acc["forecast_deals"] += 1
            acc["weighted"] += weighted
            acc["best_case"] += amount
        won = _won(as_of(doc, until), rules)
        if won is not None and _won(then, rules) is None:
            month, owner, currency, amount = won
            acc = row((month, owner, currency))
            acc["won_deals"] += 1
            acc["won"] += amount
    out = []
    for (month, owner, currency), acc in sorted(rows.items(), key=_order):
        weighted, won = quantize(acc["weighted"], currency), quantize(acc["won"], currency)
        out.append({"month": month, "owner_id": owner, "currency": currency,
                    "forecast_deals": acc["forecast_deals"], "weighted": weighted,
                    "best_case": quantize(acc["best_case"], currency),
                    "won_deals": acc["won_deals"], "won": won,
                    "difference": won - weighted})
    return {"rows": out}


def _order(item):
    return tuple("" if k is None else k for k in item[0])
