"""Quote pricing: Decimal only, rounded half-up to the currency's minor unit line by line.

Each line: gross = quantity x unit price (rounded); its own discount (a percent of gross,
rounded, or an amount); then its share of the quote-level discount; tax on what is left
(rounded, at the line's rate). The quote-level discount is rounded once as a whole and
shared out over the lines in proportion to their net amounts by largest remainder, in
minor units, so the shares add up to it exactly and every line's tax is taxed on what the
customer really pays for that line.

The quote's subtotal, discount, tax and total are exact sums of the rounded line figures:
total = subtotal - discount + tax = the sum of the line totals, to the minor unit.
"""
from decimal import Decimal

from kit.errors import Invalid
from kit.money import QUANTUM, rounded

HUNDRED = Decimal(100)
ZERO = Decimal(0)


def _unit(currency):
    return QUANTUM[currency]


def allocate(amount, weights, currency):
    """`amount` shared over `weights` in proportion, in whole minor units, by largest
    remainder (ties to the earlier line): the shares add up to `amount` exactly. Integer
    arithmetic only (the weights scaled to integers), so nothing is rounded on the way."""
    unit = _unit(currency)
    if not weights:
        return []
    places = max(max(-w.as_tuple().exponent for w in weights), 0)
    scaled = [int(w.scaleb(places)) for w in weights]
    total_weight = sum(scaled)
    if amount == 0 or total_weight == 0:
        return [ZERO.quantize(unit)] * len(weights)
    units = int(amount / unit)
    floors, remainders = [], []
    for weight in scaled:  # every weight is >= 0, so divmod floors
        share, rest = divmod(units * weight, total_weight)
        floors.append(share)
        remainders.append(rest)
    order = sorted(range(len(scaled)), key=lambda i: (-remainders[i], i))
    for i in order[:units - sum(floors)]:
        floors[i] += 1
    return [(Decimal(f) * unit).quantize(unit) for f in floors]


def _line_discount(line, gross, currency, number):
    percent, amount = line.get("discount_percent"), line.get("discount_amount")
    if percent is not None and amount is not None:
        raise Invalid("A line takes a discount percent or amount, not both.", errors={
            "lines": {number: {"discount_amount": ["Give discount_percent or this."]}}})
    if percent is not None:
        return rounded(gross * percent / HUNDRED, currency)
    if amount is not None:
        amount = rounded(amount, currency)
        if amount > gross:
            raise Invalid("A line's discount exceeds its amount.", errors={
                "lines": {number: {"discount_amount": [f"At most {gross} here."]}}})
        return amount
    return ZERO.quantize(_unit(currency))


def quote_discount(nets, currency, percent=None, amount=None):
    """The quote-level discount as one rounded amount (at most the sum of the nets)."""
    if percent is not None and amount is not None:
        raise Invalid("A quote takes a discount percent or amount, not both.",
                      errors={"discount_amount": ["Give discount_percent or this."]})
    net = sum(nets, ZERO)
    if percent is not None:
        return rounded(net * percent / HUNDRED, currency)
    if amount is not None:
        amount = rounded(amount, currency)
        if amount > net:
            raise Invalid("The quote's discount exceeds its lines' amount.",
                          errors={"discount_amount": [f"At most {net} here."]})
        return amount
    return ZERO.quantize(_unit(currency))


def price(lines, currency, *, discount_percent=None, discount_amount=None):
    """Priced lines and totals of a quote.

    `lines` are dicts with quantity, unit_price, tax_rate (a percent) and optionally
    discount_percent or discount_amount (other keys are kept). Returns
    {"lines": [... with gross, line_discount, quote_discount, net, tax, total],
     "subtotal", "discount", "tax", "total", "discount_percent"}."""
    unit = _unit(currency)
    priced = []
    for number, line in enumerate(lines):
        gross = rounded(line["quantity"] * line["unit_price"], currency)
        own = _line_discount(line, gross, currency, number)
        priced.append({**line, "gross": gross, "line_discount": own,
                       "net": (gross - own).quantize(unit)})
    whole = quote_discount([p["net"] for p in priced], currency, discount_percent,
                           discount_amount)
    for line, share in zip(priced, allocate(whole, [p["net"] for p in priced], currency),
                           strict=True):
        taxable = (line["net"] - share).quantize(unit)
        tax = rounded(taxable * line["tax_rate"] / HUNDRED, currency)
        line.update(quote_discount=share, net=taxable, tax=tax,
                    total=(taxable + tax).quantize(unit))
    subtotal = sum((p["gross"] for p in priced), ZERO).quantize(unit)
    discount = sum((p["line_discount"] + p["quote_discount"] for p in priced),
                   ZERO).quantize(unit)
    tax = sum((p["tax"] for p in priced), ZERO).quantize(unit)
    total = sum((p["total"] for p in priced), ZERO).quantize(unit)
    return {"lines": priced, "subtotal": subtotal, "discount": discount, "tax": tax,
            "total": total, "discount_percent": discount_share(discount, subtotal)}


def discount_share(discount, subtotal):
    """The discount as a percent of the subtotal, to two places (what approvals compare;
    rounded down so 10.004 % is not "over 10 %")."""
    if subtotal == 0:
        return Decimal("0.00")
    return (discount * HUNDRED / subtotal).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
