"""Quote and contract PDFs, read back as text with poppler's pdftotext: the Chinese names,
every line, the totals in figures and in words; the same input gives the same bytes (the
contract signature records their SHA-256), also in a fresh process; long quotes paginate
with their headers on every page."""
import datetime as dt
import hashlib
import json
import re
import shutil
import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import eventlet
import pytest
import yaml
from eventlet import tpool

from kit.money import MINOR_UNITS
from quotes import documents
from quotes.amount_words import chinese_capitals, english
from quotes.documents import render_contract_pdf, render_quote_pdf

ROOT = Path(__file__).resolve().parents[3]
COMPANY = {
    "name": {"en": "Dealflow Trading Co., Ltd.", "zh-CN": "德孚贸易（上海）有限公司"},
    "address": "上海市浦东新区世纪大道100号",
    "phone": "+86 21 5555 0100",
    "email": "sales@dealflow.example",
    "tax_id": "91310000MA1FL0XX1A",
}
CUSTOMER = {"name": "张伟", "company": "上海云杉科技有限公司"}
PRODUCTS = {  # description, unit, unit price in CNY, USD and JPY, tax rate (percent)
    "router": ("工业路由器 R200", "台", ("12800.00", "1799.00", "268000"), "13"),
    "licence": ("Analytics licence", "seat", ("960.50", "135.25", "19800"), "6"),
    "install": ("现场安装调试服务", "次", ("3500.00", "499.99", "75000"), "6"),
    "cable": ("Shielded cable 5 m", "pcs", ("45.80", "6.45", "980"), "13"),
}


def pdftotext(pdf, *args):
    tool = shutil.which("pdftotext")
    assert tool, "pdftotext missing: `make deps` installs Debian's poppler-utils"
    return subprocess.run([tool, "-enc", "UTF-8", *args, "-", "-"], input=pdf,
                          capture_output=True, check=True).stdout.decode("utf-8")


def squash(text):
    """Without whitespace: a wrapped Chinese phrase reads as one."""
    return re.sub(r"\s+", "", text)


def spaced(text):
    return re.sub(r"\s+", " ", text)


def rounded(amount, currency):
    return amount.quantize(Decimal(1).scaleb(-MINOR_UNITS[currency]), rounding=ROUND_HALF_UP)


def line(product, quantity, currency, discount="0"):
    """A line as the quotes domain would compute it (the documents print, never compute)."""
    description, unit, prices, rate = PRODUCTS[product]
    price = Decimal(prices[("CNY", "USD", "JPY").index(currency)])
    quantity, rate = Decimal(quantity), Decimal(rate)
    discount = rounded(Decimal(discount), currency)
    net = rounded(price * quantity, currency) - discount
    tax = rounded(net * rate / 100, currency)
    return {"description": description, "quantity": quantity, "unit": unit,
            "unit_price": price, "discount": discount, "tax_rate": rate, "net": net,
            "tax": tax, "total": net + tax}


def quote(currency, lines=None, number="Q-2026-000123", discount="0", **extra):
    lines = lines or [line("router", "2", currency, discount={"JPY": "5000"}.get(currency, "100")),
                      line("licence", "25", currency), line("install", "1", currency),
                      line("cable", "1.5", currency)]
    subtotal = sum((item["net"] for item in lines), Decimal(0))
    tax = sum((item["tax"] for item in lines), Decimal(0))
    discount = rounded(Decimal(discount), currency)
    return {"number": number, "version": 2, "currency": currency, "customer": dict(CUSTOMER),
            "issued_on": dt.date(2026, 11, 27), "valid_until": dt.date(2026, 12, 31),
            "lines": lines, "subtotal": subtotal, "discount": discount, "tax": tax,
            "total": subtotal - discount + tax,
            "terms": "付款方式：合同签订后七日内支付全款。\n\nDelivery within 30 days of payment.",
            **extra}


def contract(currency="CNY", amount="123456.78"):
    amount = Decimal(amount)
    first = rounded(amount * Decimal("0.3"), currency)
    return {
        "number": "C-2026-000045", "currency": currency, "amount": amount,
        "quote_number": "Q-2026-000123", "quote_version": 2,
        "issued_on": dt.date(2026, 12, 2),
        "parties": {"seller": {"name": "德孚贸易（上海）有限公司", "address": "上海市浦东新区",
                               "representative": "李雷"},
                    "buyer": {"name": "张伟", "company": "上海云杉科技有限公司",
                              "address": "上海市徐汇区漕溪北路88号"}},
        "milestones": [
            {"name": "签约付款 On signing", "percent": Decimal("30"), "amount": first,
             "due": "on signing"},
            {"name": "验收付款 On delivery acceptance", "percent": Decimal("70"),
             "amount": amount - first, "due": dt.date(2027, 1, 31)},
        ],
        "terms": "第一条 卖方按报价单交付货物。\n\n第二条 买方按付款计划付款。\n\n"
                 "Article 3. This contract is governed by the laws of the PRC.",
    }


def figure(amount, currency):
    return f"{amount:,.{MINOR_UNITS[currency]}f}"


# --- quotes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("currency", "locale"), [
    ("CNY", "zh-CN"), ("CNY", "en"), ("USD", "en"), ("USD", "zh-CN"), ("JPY", "en"),
    ("JPY", "zh-CN")])
def test_a_quote_reads_back_with_its_customer_lines_and_totals(currency, locale):
    data = quote(currency, discount={"JPY": "1000"}.get(currency, "50.00"))
    pdf = render_quote_pdf(data, COMPANY, locale)
    text = pdftotext(pdf, "-layout")
    rows = text.splitlines()

    assert pdf.startswith(b"%PDF-")
    assert "张伟" in text and "上海云杉科技有限公司" in text
    assert COMPANY["name"]["zh-CN" if locale == "zh-CN" else "en"] in text
    for item in data["lines"]:
        # each line on one row of the page: its description and its figures, in order
        cells = [item["description"], f"{item['quantity'].normalize():f} {item['unit']}",
                 *(figure(item[key], currency) for key in ("unit_price", "discount", "net")),
                 f"{item['tax_rate']}%",
                 *(figure(item[key], currency) for key in ("tax", "total"))]
        # pdftotext may drop the narrow space between a quantity and its unit
        pattern = r"\s+".join(re.escape(c).replace(r"\ ", r"\s*") for c in cells)
        assert [r for r in rows if re.search(pattern, r)], f"no row for {item['description']}"
    for key in ("subtotal", "discount", "tax", "total"):
        assert f"{currency} {figure(data[key], currency)}" in text, key
    assert english(data["total"], currency) in spaced(text)
    capitals = "人民币" + chinese_capitals(data["total"])
    assert (capitals in squash(text)) == (currency == "CNY" and locale == "zh-CN")
    assert "2026-12-31" in text
    assert "付款方式：合同签订后七日内支付全款。" in squash(text)
    if currency == "JPY":  # no minor unit: no decimals anywhere in the figures
        assert not re.search(r"\d,\d{3}\.\d", text)


def test_the_cny_quote_prints_exact_totals_in_figures_words_and_capitals():
    lines = [line("router", "1", "CNY")]
    lines[0].update(unit_price=Decimal("10925.37"), net=Decimal("10925.37"),
                    tax=Decimal("1420.30"), total=Decimal("12345.67"))
    data = quote("CNY", lines=lines)
    text = pdftotext(render_quote_pdf(data, COMPANY, "zh-CN"))
    assert "CNY 12,345.67" in text
    assert ("Twelve thousand, three hundred and forty-five yuan and sixty-seven fen"
            in spaced(text))
    assert "人民币壹万贰仟叁佰肆拾伍元陆角柒分" in squash(text)


def test_the_cjk_font_is_embedded_as_a_subset_with_a_unicode_map():
    pdf = render_quote_pdf(quote("CNY"), COMPANY, "zh-CN")
    tool = shutil.which("pdffonts")
    assert tool, "pdffonts missing: `make deps` installs Debian's poppler-utils"
    listing = subprocess.run([tool, "-"], input=pdf, capture_output=True, check=True,
                             text=False).stdout.decode()
    cjk = [row for row in listing.splitlines() if "WenQuanYi" in row]
    assert cjk and all(re.search(r"\+WenQuanYi\S*\s+TrueType.*yes\s+yes\s+yes", row)
                       for row in cjk), listing
    # whatever else is listed is never used for text: nothing but the CJK font is embedded
    assert all("WenQuanYi" in row or " no " in row for row in listing.splitlines()[2:])


def test_names_are_printed_as_text_not_read_as_markup():
    data = quote("USD")
    data["customer"] = {"name": "A <b>bold</b> & Sons", "company": "<font size=40>X</font>"}
    text = pdftotext(render_quote_pdf(data, COMPANY, "en"))
    assert "A <b>bold</b> & Sons" in text and "<font size=40>X</font>" in text


def test_a_long_quote_paginates_with_the_headers_on_every_page():
    currency = "CNY"
    lines = [line(("router", "licence", "install", "cable")[i % 4], str(i + 1), currency)
             for i in range(50)]
    for i, item in enumerate(lines, 1):
        item["description"] = f"{item['description']} 第{i}项"
    data = quote(currency, lines=lines)
    pdf = render_quote_pdf(data, COMPANY, "zh-CN")
    words = yaml.safe_load(documents.TEMPLATES.joinpath("documents.yml").read_text())["zh-CN"]
    whole = pdftotext(pdf, "-layout")
    pages = whole.count("\f")
    assert pages >= 2, "50 lines do not fit on one A4 page"

    seen, pages_with_lines = [], 0
    for page in range(1, pages + 1):
        text = pdftotext(pdf, "-layout", "-f", str(page), "-l", str(page))
        assert COMPANY["name"]["zh-CN"] in text and "Q-2026-000123" in text
        assert words["page"].format(page=page, pages=pages) in text
        found = re.findall(r"第(\d+)项", text)
        if found:  # a page with lines repeats the column headings above them
            heading = r"\s+".join(words[k] for k in ("line_no", "description", "quantity",
                                                      "unit_price", "discount", "net"))
            assert re.search(heading, text), f"page {page} has lines but no headings"
            pages_with_lines += 1
        seen += [int(n) for n in found]
    assert seen == list(range(1, 51)), "every line once, in order, across the pages"
    assert pages_with_lines >= 2
    assert f"CNY {figure(data['total'], currency)}" in whole


# --- contracts -------------------------------------------------------------------------------
@pytest.mark.parametrize(("currency", "amount", "locale"), [
    ("CNY", "123456.78", "zh-CN"), ("USD", "98765.43", "en"), ("JPY", "12345678", "zh-CN")])
def test_a_contract_reads_back_with_parties_amount_schedule_and_terms(currency, amount, locale):
    data = contract(currency, amount)
    text = pdftotext(render_contract_pdf(data, COMPANY, locale), "-layout")
    flat = squash(text)
    assert "C-2026-000045" in text and "Q-2026-000123" in text
    for name in ("德孚贸易（上海）有限公司", "张伟", "上海云杉科技有限公司", "李雷"):
        assert name in text
    assert f"{currency} {figure(data['amount'], currency)}" in text
    assert english(data["amount"], currency) in spaced(text)
    capitals = "人民币" + chinese_capitals(data["amount"]) if currency == "CNY" else None
    assert (capitals is not None and capitals in flat) == (currency == "CNY")
    for milestone in data["milestones"]:
        assert re.search(r"\s+".join([
            re.escape(milestone["name"]), f"{milestone['percent']}%",
            re.escape(f"{currency} {figure(milestone['amount'], currency)}")]), text)
    assert "2027-01-31" in text
    for paragraph in data["terms"].split("\n\n"):
        assert squash(paragraph) in flat


def test_the_cny_contract_prints_its_amount_in_capitals():
    text = pdftotext(render_contract_pdf(contract("CNY", "107000.53"), COMPANY, "zh-CN"))
    assert "人民币壹拾万零柒仟元伍角叁分" in squash(text)
    assert "One hundred and seven thousand yuan and fifty-three fen" in spaced(text)



@pytest.mark.parametrize(("locale", "printed", "not_printed"), [
    ("zh-CN", "德孚贸易（上海）有限公司", "Dealflow Trading"),
    ("en", "Dealflow Trading Co., Ltd.", "德孚贸易"),
])
def test_the_seller_prints_in_the_document_s_locale(locale, printed, not_printed):
    # the service's seller is its COMPANY config, whose values may be {locale: text}
    data = contract()
    data["parties"]["seller"] = {"name": COMPANY["name"],
                                 "address": {"en": "Pudong, Shanghai", "zh-CN": "上海市浦东新区"}}
    # the page header prints the company too: read the parties' block only
    body = pdftotext(render_contract_pdf(data, {"name": "Header Co."}, locale), "-layout")
    assert printed in body and not_printed not in body
    assert {"en": "Pudong, Shanghai", "zh-CN": "上海市浦东新区"}[locale] in body
    assert "{" not in body and "'en'" not in body


# --- the same bytes --------------------------------------------------------------------------
def test_the_same_input_gives_the_same_bytes():
    assert render_quote_pdf(quote("CNY"), COMPANY, "zh-CN") == \
        render_quote_pdf(quote("CNY"), COMPANY, "zh-CN")
    first = render_contract_pdf(contract(), COMPANY, "zh-CN")
    assert render_contract_pdf(contract(), COMPANY, "zh-CN") == first
    assert render_contract_pdf(contract(amount="123456.79"), COMPANY, "zh-CN") != first
    assert b"/CreationDate (D:2000" in first, "a fixed date, not the clock's"


def digests():
    return [hashlib.sha256(render_quote_pdf(quote("CNY"), COMPANY, "zh-CN")).hexdigest(),
            hashlib.sha256(render_contract_pdf(contract(), COMPANY, "zh-CN")).hexdigest()]


PROBE = """
import json, sys
sys.path[:0] = {paths}
from tests.unit.quotes import test_quotes_documents as t
print(json.dumps(t.digests()))
"""


def test_a_fresh_process_renders_the_same_bytes():
    """The signature's SHA-256 is checked later, by another instance: the font is loaded
    anew, the clock has moved on, and the bytes are still the same."""
    paths = [str(ROOT / "services"), str(ROOT)]
    other = subprocess.run([sys.executable, "-c", PROBE.format(paths=paths)], cwd=ROOT,
                           capture_output=True, text=True, check=True,
                           env={"PYTHONPATH": ":".join(paths), "PYTHONHASHSEED": "random"})
    assert json.loads(other.stdout) == digests()


# --- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("locale", ["de", "fr-FR", "", None, "zh-TW"])
def test_an_unknown_locale_is_refused(locale):
    with pytest.raises(ValueError, match="en or zh-CN"):
        render_quote_pdf(quote("CNY"), COMPANY, locale)


@pytest.mark.parametrize("locale", ["en", "en-US", "en_GB", "zh", "zh-CN", "zh_CN", "zh-Hans"])
def test_known_locales_in_their_spellings(locale):
    assert documents.normalise_locale(locale) in ("en", "zh-CN")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("total", Decimal("12.345"), "at most 2 decimal places"),       # CNY has 2
    ("subtotal", 12.5, "Decimal"),                                  # a float, never
    ("tax", "12.50", "Decimal"),
])
def test_amounts_that_are_not_in_the_currency_are_refused(field, value, message):
    data = quote("CNY")
    data[field] = value
    with pytest.raises(ValueError, match=message):
        render_quote_pdf(data, COMPANY, "en")


def test_an_unknown_currency_is_refused():
    data = quote("CNY")
    data["currency"] = "XXX"
    with pytest.raises(ValueError, match="'XXX' is not an ISO 4217 tender currency"):
        render_quote_pdf(data, COMPANY, "en")


def test_a_jpy_amount_with_decimals_is_refused():
    data = quote("JPY")
    data["lines"][0]["unit_price"] = Decimal("268000.5")
    with pytest.raises(ValueError, match="JPY amounts have no decimal places"):
        render_quote_pdf(data, COMPANY, "en")


def test_every_locale_has_every_word():
    words = yaml.safe_load(documents.TEMPLATES.joinpath("documents.yml").read_text())
    assert set(words) == {"en", "zh-CN"}
    assert set(words["en"]) == set(words["zh-CN"])


# --- text of any length and content ----------------------------------------------------------
def count_each(text, phrase):
    """How often each character of `phrase` occurs (a page break puts the header and
    footer between two characters, so whole phrases are not counted)."""
    return {char: text.count(char) for char in phrase}


def test_text_longer_than_a_page_flows_over_pages_whole():
    data = quote("CNY")
    data["lines"][0]["description"] = "龙凤麒麟" * 1000
    data["customer"]["company"] = "鸳鸯鹦鹉" * 600
    pdf = render_quote_pdf(data, COMPANY, "zh-CN")
    text = pdftotext(pdf)
    assert text.count("\f") > 2
    assert count_each(text, "龙凤麒麟") == dict.fromkeys("龙凤麒麟", 1000)
    assert count_each(text, "鸳鸯鹦鹉") == dict.fromkeys("鸳鸯鹦鹉", 600)

    terms = contract()
    terms["parties"]["buyer"]["name"] = "甲乙丙丁" * 800
    terms["milestones"][0]["name"] = "戊己庚辛" * 800
    terms["terms"] = "\n\n".join(f"第{n}款 " + "壬癸子丑" * 40 for n in range(1, 60))
    text = pdftotext(render_contract_pdf(terms, COMPANY, "zh-CN"))
    assert count_each(text, "甲乙丙丁") == dict.fromkeys("甲乙丙丁", 800)
    assert count_each(text, "戊己庚辛") == dict.fromkeys("戊己庚辛", 800)
    assert count_each(text, "壬癸子丑") == dict.fromkeys("壬癸子丑", 59 * 40)


@pytest.mark.parametrize("name", ["Router 😀 ✓", "a\x00b\x07c", "&amp; &#x41; <br/> ]]>",
                                  "", "עברית العربية"])
def test_odd_text_renders_and_the_rest_reads_back(name):
    data = quote("USD")
    data["customer"]["name"] = name
    data["lines"][0]["description"] = name
    text = pdftotext(render_quote_pdf(data, COMPANY, "en"))
    assert "上海云杉科技有限公司" in text and "USD " + figure(data["total"], "USD") in text


def test_renders_in_os_threads_at_once_give_the_same_bytes():
    """A service may render in eventlet's thread pool (real threads) so that its hub
    keeps serving: documents built at the same time keep their font subsets apart."""
    expected = render_quote_pdf(quote("CNY"), COMPANY, "zh-CN")
    pool = eventlet.GreenPool()
    results = list(pool.imap(
        lambda _: tpool.execute(render_quote_pdf, quote("CNY"), COMPANY, "zh-CN"), range(8)))
    assert all(pdf == expected for pdf in results)
