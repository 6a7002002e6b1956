"""Amounts in words: renminbi financial capitals (大写) by the PBOC rules for bills, and
English words per currency. The capitals are also decoded back for random amounts."""
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kit.money import MAX_AMOUNT
from quotes.amount_words import chinese_capitals, english

DIGITS = "零壹贰叁肆伍陆柒捌玖"


@pytest.mark.parametrize(("amount", "capitals"), [
    # the examples of 《正确填写票据和结算凭证的基本规定》 (where the rules allow two forms,
    # the one without a 零 before 角, which is also the one with 零 inside the integer)
    ("1409.50", "壹仟肆佰零玖元伍角"),
    ("6007.14", "陆仟零柒元壹角肆分"),
    ("1680.32", "壹仟陆佰捌拾元叁角贰分"),
    ("107000.53", "壹拾万零柒仟元伍角叁分"),
    ("16409.02", "壹万陆仟肆佰零玖元零贰分"),
    ("325.04", "叁佰贰拾伍元零肆分"),
    # the brief's example
    ("12345.67", "壹万贰仟叁佰肆拾伍元陆角柒分"),
    # whole yuan end in 整; 拾 always carries 壹
    ("100", "壹佰元整"),
    ("100.00", "壹佰元整"),
    ("10", "壹拾元整"),
    ("1", "壹元整"),
    ("15", "壹拾伍元整"),
    ("110000", "壹拾壹万元整"),
    ("100000", "壹拾万元整"),
    # below one yuan: no 元, no leading 零
    ("0.07", "柒分"),
    ("0.50", "伍角"),
    ("0.5", "伍角"),
    ("0.57", "伍角柒分"),
    ("0", "零元整"),
    ("0.00", "零元整"),
    # zeros inside: one 零 per run, across 万 and 亿 too; none for trailing zeros
    ("1001", "壹仟零壹元整"),
    ("1010", "壹仟零壹拾元整"),
    ("1100", "壹仟壹佰元整"),
    ("10005000", "壹仟万零伍仟元整"),
    ("10050000", "壹仟零伍万元整"),
    ("100000007", "壹亿零柒元整"),
    ("100010000", "壹亿零壹万元整"),
    ("110000000", "壹亿壹仟万元整"),
    ("150000000", "壹亿伍仟万元整"),
    ("1000050000", "壹拾亿零伍万元整"),
    ("1.01", "壹元零壹分"),
    ("1.10", "壹元壹角"),
    ("20300.40", "贰万零叁佰元肆角"),
    # 万亿 above 10^12, up to kit.money's limit
    ("1000000000000", "壹万亿元整"),
    ("1000000000005", "壹万亿零伍元整"),
    ("999999999999999.99",
     "玖佰玖拾玖万玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分"),
])
def test_chinese_capitals(amount, capitals):
    assert chinese_capitals(Decimal(amount)) == capitals


@pytest.mark.parametrize(("amount", "currency", "words"), [
    ("12345.67", "CNY", "Twelve thousand, three hundred and forty-five yuan and sixty-seven fen"),
    ("12345.67", "USD",
     "Twelve thousand, three hundred and forty-five US dollars and sixty-seven cents"),
    ("1.01", "USD", "One US dollar and one cent"),
    ("0.01", "USD", "One cent"),
    ("100.00", "USD", "One hundred US dollars"),
    ("0", "USD", "Zero US dollars"),
    ("1234567", "JPY",
     "One million, two hundred and thirty-four thousand, five hundred and sixty-seven yen"),
    ("1", "JPY", "One yen"),
    ("2.50", "EUR", "Two euros and fifty cents"),
    ("1.02", "GBP", "One pound sterling and two pence"),
    ("1.01", "GBP", "One pound sterling and one penny"),
    # a currency without names in our table: its code, and the minor part as a fraction
    ("12.50", "CHF", "Twelve CHF and 50/100"),
    ("7.005", "KWD", "Seven KWD and 005/1000"),
    ("7", "CHF", "Seven CHF"),
])
def test_english(amount, currency, words):
    assert english(Decimal(amount), currency) == words


@pytest.mark.parametrize(("call", "amount"), [
    ("capitals", "0.001"),         # more places than the fen
    ("capitals", "-1.00"),         # negative
    ("capitals", str(MAX_AMOUNT)),  # beyond kit.money's limit
    ("capitals", "NaN"),
    ("capitals", 1.5),             # float, never
    ("english-JPY", "1.5"),        # JPY has no minor unit
    ("english-USD", "0.001"),
    ("english-USD", "-0.01"),
    ("english-XXX", "1.00"),       # no tender currency
])
def test_bad_amounts_are_refused(call, amount):
    value = Decimal(amount) if isinstance(amount, str) else amount
    with pytest.raises(ValueError):
        if call == "capitals":
            chinese_capitals(value)
        else:
            english(value, call.split("-")[1])


def decode(text):
    """The amount that financial capitals stand for (a reader written apart from the
    writer: it parses by the units, the writer builds by the digits)."""
    text = text.removesuffix("整")
    fen = jiao = 0
    if text.endswith("分"):
        fen = DIGITS.index(text[-2])
        text = text[:-2]
    text = text.removesuffix("零")
    if text.endswith("角"):
        jiao = DIGITS.index(text[-2])
        text = text[:-2]
    yuan = integer(text.removesuffix("元")) if text else 0
    return Decimal(yuan) + Decimal(jiao) / 10 + Decimal(fen) / 100


def integer(text):
    for unit, size in (("亿", 10 ** 8), ("万", 10 ** 4)):
        if unit in text:
            high, low = text.rsplit(unit, 1)
            return integer(high) * size + integer(low)
    value, digit = 0, 0
    for char in text:
        if char in DIGITS:
            digit = DIGITS.index(char)
        else:
            value += digit * {"拾": 10, "佰": 100, "仟": 1000}[char]
            digit = 0
    return value + digit


@given(st.decimals(min_value=0, max_value=MAX_AMOUNT - Decimal("0.01"), places=2))
def test_capitals_read_back_to_the_amount_and_follow_the_zero_rules(amount):
    capitals = chinese_capitals(amount)
    assert decode(capitals) == amount
    assert "零零" not in capitals
    if amount == 0:
        assert capitals == "零元整"
        return
    assert not capitals.startswith("零")
    assert not re.search(r"零[元万亿]", capitals), "trailing zeros are not spoken"
    assert capitals.endswith("整") == (amount == amount.to_integral_value())
    assert ("拾" not in capitals) or all(
        capitals[i - 1] in DIGITS for i, c in enumerate(capitals) if c == "拾")
