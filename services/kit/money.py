"""ISO 4217 tender currencies and their minor units, from the `iso4217` package's copy of
the ISO table (not CLDR: babel differs for IQD, IRR, LAK), and the amount rules they imply.

Tender: a currency with a numeric minor unit that is not a fund. That leaves out precious
metals, bond-market units, testing and "no currency" codes (XAU, XBA…, XTS, XXX, minor
unit "N.A."), SDR and other units of account, and funds (BOV, CLF, USN…, IsFund).
"""
from decimal import ROUND_HALF_UP, Decimal

import iso4217

# A unit of account of the Arab Monetary Fund; ISO lists it with two minor units and
# without the fund flag, but nobody pays in it.
UNITS_OF_ACCOUNT = frozenset({"XAD"})

# Amounts stay below 10^15 (a quadrillion) in any currency: larger figures are typing
# mistakes or attacks, and they would turn every sum in the forecast into noise.
MAX_AMOUNT = Decimal(10) ** 15


def _tender(table):
    out = {}
    for entry in table.findall("CcyTbl/CcyNtry"):
        code, name, minor = (entry.find(tag) for tag in ("Ccy", "CcyNm", "CcyMnrUnts"))
        if code is None or minor is None or not minor.text.strip().isdigit():
            continue
        if name.get("IsFund") or code.text in UNITS_OF_ACCOUNT:
            continue
        out[code.text.strip()] = int(minor.text)
    return out


MINOR_UNITS = _tender(iso4217.raw_xml)
TENDER = frozenset(MINOR_UNITS)


def in_currency(amount, currency):
    """`amount` with exactly `currency`'s minor units ("100.5" CNY -> "100.50"), or
    ValueError when it has more places than the currency has (0.001 CNY, 100.5 JPY)."""
    places = MINOR_UNITS[currency]
    if -amount.as_tuple().exponent > places:
        if places == 0:
            raise ValueError(f"{currency} amounts have no decimal places.")
        raise ValueError(f"{currency} amounts have at most {places} decimal places.")
    return amount.quantize(Decimal(1).scaleb(-places))


QUANTUM = {code: Decimal(1).scaleb(-places) for code, places in MINOR_UNITS.items()}


def rounded(amount, currency):
    """`amount` rounded half-up to `currency`'s minor units (a price times a quantity, a
    percentage of an amount): the one rounding rule of quotes and contracts."""
    return amount.quantize(QUANTUM[currency], rounding=ROUND_HALF_UP)
