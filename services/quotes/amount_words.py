"""Amounts in words, as quotes and contracts print them beside the figures.

- `english(amount, currency)`: "Twelve thousand, three hundred and forty-five US dollars and
  sixty-seven cents". The numbers come from num2words; the unit names come from the table
  below, because num2words 0.5.14 names only some currencies (no CNY, no JPY) and speaks
  cents for currencies that have none.
- `chinese_capitals(amount)`: the financial capitals (大写) for renminbi, e.g. 12345.67 ->
  壹万贰仟叁佰肆拾伍元陆角柒分. num2words 0.5.14 has no Chinese at all, so this is our own,
  following the PBOC rules for filling in bills (《正确填写票据和结算凭证的基本规定》):
  - 拾 always carries its digit: 10 -> 壹拾元整, 100000 -> 壹拾万元整.
  - A run of zeros between non-zero digits, also across 万 and 亿, is one 零:
    1409 -> 壹仟肆佰零玖, 6007 -> 陆仟零柒, 107000 -> 壹拾万零柒仟, 100000007 -> 壹亿零柒;
    trailing zeros are not spoken (1680 -> 壹仟陆佰捌拾).
  - The rules let a 零 before 角 be written or left out when the yuan digit is 0
    (1680.32); we leave it out, the form that matches 壹拾万零柒仟元伍角叁分.
  - 角 zero and 分 not: 零 after 元 (16409.02 -> 壹万陆仟肆佰零玖元零贰分), as required.
  - Whole yuan end in 整 (100 -> 壹佰元整); 角 without 分 take no 整 (allowed, and shorter);
    below one yuan there is no 元 (0.07 -> 柒分); zero is 零元整.
  - 万亿 for 10^12 and above (壹万亿元整), within kit.money's MAX_AMOUNT.
"""
from decimal import Decimal

from num2words import num2words

from kit.money import MAX_AMOUNT, MINOR_UNITS

# (major singular, major plural), (minor singular, minor plural); a currency not listed
# here is named by its ISO code with its minor part as a fraction ("and 67/100").
UNIT_NAMES = {
    "CNY": (("yuan", "yuan"), ("fen", "fen")),
    "USD": (("US dollar", "US dollars"), ("cent", "cents")),
    "EUR": (("euro", "euros"), ("cent", "cents")),
    "GBP": (("pound sterling", "pounds sterling"), ("penny", "pence")),
    "HKD": (("Hong Kong dollar", "Hong Kong dollars"), ("cent", "cents")),
    "JPY": (("yen", "yen"), None),
    "SGD": (("Singapore dollar", "Singapore dollars"), ("cent", "cents")),
}

DIGITS = "零壹贰叁肆伍陆柒捌玖"
SECTION_UNITS = ("", "拾", "佰", "仟")
TEN_THOUSAND = 10 ** 4
HUNDRED_MILLION = 10 ** 8


def _split(amount, currency):
    """(whole units, minor units as an int, places) of a non-negative amount that has
    no more places than `currency` has."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"An amount must be a finite Decimal, not {amount!r}.")
    if amount < 0 or amount >= MAX_AMOUNT:
        raise ValueError(f"An amount in words must be from 0 to below {MAX_AMOUNT}.")
    if currency not in MINOR_UNITS:
        raise ValueError(f"{currency!r} is not an ISO 4217 tender currency.")
    places = MINOR_UNITS[currency]
    scaled = amount.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{currency} amounts have at most {places} decimal places.")
    whole, minor = divmod(int(scaled), 10 ** places)
    return whole, minor, places


def _plural(forms, count):
    return forms[0] if count == 1 else forms[1]


def english(amount, currency):
    """`amount` (a Decimal in `currency`) in English words, first letter capitalised."""
    whole, minor, places = _split(amount, currency)
    names = UNIT_NAMES.get(currency)
    words = num2words(whole, lang="en")
    if names is None:
        text = f"{words} {currency}"
        if minor:
            text += f" and {minor:0{places}d}/{10 ** places}"
    else:
        major_names, minor_names = names
        text = f"{words} {_plural(major_names, whole)}"
        if minor:
            cents = f"{num2words(minor, lang='en')} {_plural(minor_names, minor)}"
            text = f"{text} and {cents}" if whole else cents
    return text[0].upper() + text[1:]


def _section(n):
    """0 < n < 10^4 in capitals, one 零 for each inner run of zeros."""
    out, pending_zero = [], False
    for power in range(3, -1, -1):
        digit = n // 10 ** power % 10
        if digit == 0:
            pending_zero = bool(out)
            continue
        if pending_zero:
            out.append(DIGITS[0])
            pending_zero = False
        out.append(DIGITS[digit] + SECTION_UNITS[power])
    return "".join(out)


def _integer(n):
    """0 < n < 10^16 in capitals: 亿 above 万 above sections, one 零 where zeros stand
    between the higher and the lower part."""
    for size, unit in ((HUNDRED_MILLION, "亿"), (TEN_THOUSAND, "万")):
        if n >= size:
            high, low = divmod(n, size)
            text = _integer(high) + unit
            if low:
                # zeros between the two parts: at the end of the high one or the start of the low
                gap = high % 10 == 0 or low < size // 10
                text += (DIGITS[0] if gap else "") + _integer(low)
            return text
    return _section(n)


def chinese_capitals(amount):
    """A renminbi amount (Decimal, at most 2 places) in financial capitals, without the
    人民币 prefix (the document prints it)."""
    whole, minor, _ = _split(amount, "CNY")
    jiao, fen = divmod(minor, 10)
    if whole == 0 and minor == 0:
        return "零元整"
    text = _integer(whole) + "元" if whole else ""
    if minor == 0:
        return text + "整"
    if jiao:
        text += DIGITS[jiao] + "角"
    elif whole:
        text += DIGITS[0]
    if fen:
        text += DIGITS[fen] + "分"
    return text
