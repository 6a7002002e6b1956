"""Quote and contract PDFs: pure functions from plain dicts to the exact bytes of a PDF.

    render_quote_pdf(quote, company, locale) -> bytes
    render_contract_pdf(contract, company, locale) -> bytes

The same arguments give the same bytes, in any process on any day (reportlab's invariant
mode fixes the creation date and the document ID; font subsets are named by their order),
so the SHA-256 a contract signature records identifies the document the customer saw.
Nothing here computes a figure: the quotes domain computes every amount, these functions
print what they are given, in the currency's minor units (kit.money; JPY has none).

`locale` is "en" or "zh-CN" ("en-US", "zh", "zh_CN", "zh-Hans" are taken too); anything
else is a ValueError. Words come from templates/documents.yml. Text is set in WenQuanYi
Zen Hei (Debian's fonts-wqy-zenhei, TrueType outlines, which reportlab embeds as subsets
with a ToUnicode map: any viewer shows it and pdftotext reads the Chinese back).

Shapes (Decimal for every amount, rate and quantity; dates as `datetime.date`, aware
`datetime` (printed as its UTC date) or ISO strings; optional keys may be left out):

company (from the service's config):
    {"name": str, "address": str?, "phone": str?, "email": str?, "website": str?,
     "tax_id": str?, "bank": str?}
    Any of these values may instead be {locale: str} (e.g. {"en": "...", "zh-CN": "..."});
    the locale's text is printed, else "en"'s.

quote:
    {"number": "Q-2026-000123", "version": 2, "currency": "CNY",
     "customer": {"name": "张伟", "company": "上海云杉科技有限公司"?, "address": str?},
     "issued_on": date?, "valid_until": date,
     "lines": [{"description": str, "quantity": Decimal, "unit": str ("台", "licence"),
                "unit_price": Decimal, "discount": Decimal (the line's discount as an
                amount), "tax_rate": Decimal (percent: Decimal("13") is 13 %),
                "net": Decimal, "tax": Decimal, "total": Decimal}, ...],
     "subtotal": Decimal (sum of the lines' net), "discount": Decimal (quote-level
     discount as an amount), "tax": Decimal, "total": Decimal,
     "terms": str? (blank lines separate paragraphs)}

contract:
    {"number": "C-2026-000045", "currency": "CNY", "amount": Decimal,
     "quote_number": str?, "quote_version": int?, "issued_on": date?,
     "parties": {"seller": PARTY, "buyer": PARTY},
        PARTY = {"name": str, "company": str?, "address": str?, "representative": str?,
                 "tax_id": str?} (each may be {locale: str}, as company's values)
     "milestones": [{"name": str, "percent": Decimal, "amount": Decimal,
                     "due": date | str?}, ...],
     "terms": str (the contract's text; blank lines separate paragraphs)}

The amount is printed in figures ("CNY 12,345.67"), in English words, and for CNY in the
zh-CN locale also in financial capitals (amount_words).
"""
import datetime as dt
import functools
import io
import re
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

import yaml
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Frame,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from kit.money import MINOR_UNITS, in_currency
from quotes import amount_words

TEMPLATES = Path(__file__).with_name("templates")
# Debian's fonts-wqy-zenhei (the Makefile's `deps` installs it); face 0 of the collection
# is the proportional Zen Hei. Noto CJK would look finer but ships CFF outlines, which
# reportlab cannot embed.
FONT_FILE = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
FONT = "DealflowCJK"
LOCALES = {"en": "en", "zh-cn": "zh-CN", "zh": "zh-CN", "zh-hans": "zh-CN",
           "zh-hans-cn": "zh-CN"}
CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")

PAGE_MARGIN = 14 * mm
HEADER_HEIGHT = 30 * mm
FOOTER_HEIGHT = 12 * mm
RULE = colors.HexColor("#9aa5b1")
SHADE = colors.HexColor("#eef1f4")


# --- inputs ----------------------------------------------------------------------------------
def normalise_locale(locale):
    """"en" or "zh-CN" for the locales we print, ValueError naming them otherwise."""
    key = str(locale or "").replace("_", "-").lower()
    if key in LOCALES:
        return LOCALES[key]
    if key.startswith("en-"):
        return "en"
    raise ValueError(f"Documents are printed in en or zh-CN, not {locale!r}.")


@functools.cache
def _words():
    with open(TEMPLATES / "documents.yml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _font():
    if FONT not in pdfmetrics.getRegisteredFontNames():
        if not Path(FONT_FILE).exists():
            raise RuntimeError(f"{FONT_FILE} is missing: install fonts-wqy-zenhei (make deps)")
        pdfmetrics.registerFont(TTFont(FONT, FONT_FILE, subfontIndex=0))
    return FONT


# Loaded once at import, in one thread: renders may then run in threads at once (reportlab
# keeps each document's font subsets apart), and none pays the 0.1 s of reading the font.
if Path(FONT_FILE).exists():
    _font()


def money(amount, currency):
    """"CNY 12,345.67", "JPY 1,234,567": the currency's minor units exactly (an amount with
    more places is a ValueError, not rounded: rounding is the domain's job)."""
    if not isinstance(amount, Decimal):
        raise ValueError(f"Amounts are Decimal, not {type(amount).__name__}.")
    if currency not in MINOR_UNITS:
        raise ValueError(f"{currency!r} is not an ISO 4217 tender currency.")
    places = MINOR_UNITS[currency]
    return f"{currency} {in_currency(amount, currency):,.{places}f}"


def _figure(amount, currency):
    return money(amount, currency).split(" ", 1)[1]


def _number(value):
    """A quantity or rate without trailing zeros: 2, 1.5, 13."""
    return f"{value.normalize():f}" if isinstance(value, Decimal) else str(value)


def _date(value):
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _local(value, locale):
    if isinstance(value, dict):
        return value.get(locale) or value.get("en") or next(iter(value.values()), "")
    return "" if value is None else str(value)


# --- layout ----------------------------------------------------------------------------------
class _Styles:
    def __init__(self):
        font = _font()
        self.body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12.5)
        self.small = ParagraphStyle("small", parent=self.body, fontSize=8, leading=10.5)
        self.cell = ParagraphStyle("cell", parent=self.body, fontSize=8, leading=10)
        self.head = ParagraphStyle("head", parent=self.body, fontSize=11, leading=15,
                                   spaceBefore=8, spaceAfter=4)
        self.figure = ParagraphStyle("figure", parent=self.body, alignment=TA_RIGHT)
        self.lead = ParagraphStyle("lead", parent=self.body, fontSize=11, leading=15)
        self.total = ParagraphStyle("total", parent=self.lead, alignment=TA_RIGHT)


def _para(text, style):
    """A paragraph of plain text (escaped: names are data, not markup). Chinese wraps at
    any character, other text only at spaces, so English words stay whole."""
    text = "" if text is None else str(text)
    wrap = "CJK" if CJK.search(text) else None
    if wrap:
        style = ParagraphStyle(style.name + "-cjk", parent=style, wordWrap=wrap)
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _paragraphs(text, style):
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text or "") if b.strip()]
    return [_para(block, style) for block in blocks]


def _grid(rows, widths, right=(), header=True, repeat=0):
    """A table of lines; cells that never wrap (numbers, dates) are plain strings, drawn
    without a paragraph's layout (most of the time of a long quote otherwise)."""
    table = Table(rows, colWidths=widths, repeatRows=repeat, splitInRow=1)
    style = [("VALIGN", (0, 0), (-1, -1), "TOP"),
             ("FONT", (0, 0), (-1, -1), FONT, 8, 10),
             *(("ALIGN", (col, 0), (col, -1), "RIGHT") for col in right),
             ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
             ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
             ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3)]
    if header:
        style += [("BACKGROUND", (0, 0), (-1, 0), SHADE),
                  ("LINEBELOW", (0, 0), (-1, 0), 0.75, RULE)]
    table.setStyle(TableStyle(style))
    return table


def _pages(draw):
    """A canvas that draws each page's header and footer at the end, when the number of
    pages is known ("Page 2 of 3")."""

    class PagedCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages = []

        def showPage(self):
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            for number, state in enumerate(self._pages, 1):
                self.__dict__.update(state)
                draw(self, number, len(self._pages))
                super().showPage()
            super().save()

    return PagedCanvas


def _header(company, locale, words, title, reference):
    def draw(canvas, page, pages):
        width, height = A4
        top = height - PAGE_MARGIN
        canvas.saveState()
        canvas.setFont(FONT, 14)
        canvas.drawString(PAGE_MARGIN, top - 12, _local(company.get("name"), locale))
        canvas.setFont(FONT, 8)
        details = [_local(company.get(key), locale) for key in ("address", "phone", "email",
                                                                "website")]
        y = top - 24
        for line in (" · ".join(d for d in details[:1] if d),
                     " · ".join(d for d in details[1:] if d),
                     "  ".join(f"{words[k]}: {_local(company.get(k), locale)}"
                               for k in ("tax_id", "bank") if company.get(k))):
            if line:
                canvas.drawString(PAGE_MARGIN, y, line)
                y -= 10
        canvas.setFont(FONT, 16)
        canvas.drawRightString(width - PAGE_MARGIN, top - 12, title)
        canvas.setFont(FONT, 9)
        canvas.drawRightString(width - PAGE_MARGIN, top - 26, reference)
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.75)
        canvas.line(PAGE_MARGIN, height - PAGE_MARGIN - HEADER_HEIGHT + 4 * mm,
                    width - PAGE_MARGIN, height - PAGE_MARGIN - HEADER_HEIGHT + 4 * mm)
        canvas.setFont(FONT, 8)
        canvas.drawString(PAGE_MARGIN, PAGE_MARGIN, reference)
        canvas.drawRightString(width - PAGE_MARGIN, PAGE_MARGIN,
                               words["page"].format(page=page, pages=pages))
        canvas.restoreState()
    return draw


def _build(story, company, locale, title, reference, subject):
    words = _words()[locale]
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer, pagesize=A4, invariant=1, initialFontName=FONT, title=f"{title} {reference}",
        author=_local(company.get("name"), locale), subject=subject, creator="Dealflow",
        leftMargin=PAGE_MARGIN, rightMargin=PAGE_MARGIN,
        topMargin=PAGE_MARGIN + HEADER_HEIGHT, bottomMargin=PAGE_MARGIN + FOOTER_HEIGHT)
    frame = Frame(doc.leftMargin, doc.bottomMargin, doc.width, doc.height, id="body",
                  leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame])])
    doc.build(story, canvasmaker=_pages(_header(company, locale, words, title, reference)))
    return buffer.getvalue()


def _amount_block(amount, currency, locale, words, styles):
    """The total in words: English always, financial capitals for renminbi in zh-CN."""
    out = [_para(f"{words['in_words']} {amount_words.english(amount, currency)}",
                 styles.body)]
    if locale == "zh-CN" and currency == "CNY":
        out.append(_para(f"{words['in_capitals']} 人民币{amount_words.chinese_capitals(amount)}",
                         styles.body))
    return out


# --- documents -------------------------------------------------------------------------------
def render_quote_pdf(quote, company, locale):
    """The quote's PDF (shape in the module docstring) as bytes."""
    locale = normalise_locale(locale)
    words = _words()[locale]
    styles = _Styles()
    currency = quote["currency"]
    reference = f"{words['number']} {quote['number']} · {words['version']} {quote['version']}"

    customer = quote["customer"]
    who = [_para(words["customer"], styles.small)]
    who += [_para(customer.get(key), styles.body) for key in ("company", "name", "address")
            if customer.get(key)]
    facts = [(words["number"], quote["number"]), (words["version"], quote["version"]),
             (words["issued_on"], _date(quote.get("issued_on"))),
             (words["valid_until"], _date(quote.get("valid_until"))),
             (words["currency"], currency)]
    facts_table = Table([[_para(k, styles.small), _para(v, styles.body)]
                         for k, v in facts if v not in ("", None)],
                        colWidths=[28 * mm, 50 * mm])
    facts_table.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0),
                                     ("TOPPADDING", (0, 0), (-1, -1), 0)]))
    intro = Table([[who, facts_table]], colWidths=[104 * mm, 78 * mm], splitInRow=1)
    intro.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                               ("LEFTPADDING", (0, 0), (-1, -1), 0)]))

    columns = ["line_no", "description", "quantity", "unit_price", "discount", "net",
               "tax_rate", "tax", "total"]
    rows = [[words[c] for c in columns]]
    for number, line in enumerate(quote["lines"], 1):
        quantity = _number(line["quantity"])
        if line.get("unit"):
            quantity = f"{quantity} {line['unit']}"
        rows.append([str(number), _para(line["description"], styles.cell), quantity,
                     _figure(line["unit_price"], currency), _figure(line["discount"], currency),
                     _figure(line["net"], currency), f"{_number(line['tax_rate'])}%",
                     _figure(line["tax"], currency), _figure(line["total"], currency)])
    widths = [8, 46, 17, 21, 18, 21, 11, 18, 22]
    lines = _grid(rows, [w * mm for w in widths], right=range(2, 9), repeat=1)

    totals = [(words["subtotal"], quote["subtotal"]), (words["quote_discount"], quote["discount"]),
              (words["tax"], quote["tax"])]
    total_rows = [[_para(label, styles.body), _para(money(value, currency), styles.figure)]
                  for label, value in totals]
    total_rows.append([_para(words["total"], styles.lead),
                       _para(money(quote["total"], currency), styles.total)])
    totals_table = Table(total_rows, colWidths=[40 * mm, 52 * mm], hAlign="RIGHT")
    totals_table.setStyle(TableStyle([("LINEABOVE", (0, -1), (-1, -1), 0.75, RULE),
                                      ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))

    story = [intro, Spacer(1, 5 * mm), lines, Spacer(1, 3 * mm),
             KeepTogether([totals_table, Spacer(1, 3 * mm),
                           *_amount_block(quote["total"], currency, locale, words, styles)])]
    if quote.get("valid_until"):
        story += [Spacer(1, 3 * mm),
                  _para(words["validity"].format(date=_date(quote["valid_until"])),
                        styles.body)]
    if quote.get("terms"):
        story += [_para(words["terms"], styles.head), *_paragraphs(quote["terms"], styles.body)]
    return _build(story, company, locale, words["quote_title"], reference,
                  f"{quote['number']} v{quote['version']}")


def _party(party, label, locale, words, styles):
    """A party's block; the seller is the configured company, whose values may be
    {locale: text} as in the page header."""
    out = [_para(label, styles.head)]
    for key in ("company", "name"):
        if party.get(key):
            out.append(_para(_local(party[key], locale), styles.body))
    for key in ("address", "representative", "tax_id"):
        if party.get(key):
            out.append(_para(f"{words[key]}: {_local(party[key], locale)}", styles.small))
    return out


def render_contract_pdf(contract, company, locale):
    """The contract's PDF (shape in the module docstring) as bytes; the signature records
    the SHA-256 of exactly these bytes."""
    locale = normalise_locale(locale)
    words = _words()[locale]
    styles = _Styles()
    currency = contract["currency"]
    reference = f"{words['number']} {contract['number']}"

    facts = [(words["number"], contract["number"]),
             (words["issued_on"], _date(contract.get("issued_on")))]
    if contract.get("quote_number"):
        version = contract.get("quote_version")
        facts.append((words["quote_ref"], contract["quote_number"]
                      + (f" · {words['version']} {version}" if version else "")))
    facts_table = Table([[_para(k, styles.small), _para(v, styles.body)]
                         for k, v in facts if v], colWidths=[28 * mm, 154 * mm], splitInRow=1)
    facts_table.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0)]))

    parties = contract["parties"]
    party_table = Table([[_party(parties["seller"], words["seller"], locale, words, styles),
                          _party(parties["buyer"], words["buyer"], locale, words, styles)]],
                        colWidths=[91 * mm, 91 * mm], splitInRow=1)
    party_table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                     ("LEFTPADDING", (0, 0), (-1, -1), 0)]))

    amount = [_para(words["contract_amount"], styles.head),
              _para(money(contract["amount"], currency), styles.lead),
              *_amount_block(contract["amount"], currency, locale, words, styles)]

    rows = [[words[k] for k in ("line_no", "milestone", "share", "amount", "due")]]
    for number, milestone in enumerate(contract.get("milestones") or [], 1):
        rows.append([str(number), _para(milestone["name"], styles.cell),
                     f"{_number(milestone['percent'])}%", money(milestone["amount"], currency),
                     _date(milestone.get("due"))])
    schedule = _grid(rows, [w * mm for w in (8, 72, 18, 44, 40)], right=(2, 3), repeat=1)

    def signature(party_key):
        label = words["signed_for"].format(party=words[party_key])
        blank = "_" * 28
        return [_para(label, styles.body), Spacer(1, 8 * mm),
                _para(f"{words['signature']}: {blank}", styles.body), Spacer(1, 3 * mm),
                _para(f"{words['name']}: {blank}", styles.body), Spacer(1, 3 * mm),
                _para(f"{words['signed_on']}: {blank}", styles.body)]
    signatures = Table([[signature("seller"), signature("buyer")]],
                       colWidths=[91 * mm, 91 * mm])
    signatures.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                    ("LEFTPADDING", (0, 0), (-1, -1), 0)]))

    story = [facts_table, _para(words["parties"], styles.head), party_table,
             KeepTogether(amount)]
    if len(rows) > 1:
        story += [_para(words["payment_schedule"], styles.head), schedule]
    if contract.get("terms"):
        story += [_para(words["terms"], styles.head),
                  *_paragraphs(contract["terms"], styles.body)]
    story += [KeepTogether([_para(words["signatures"], styles.head), signatures])]
    return _build(story, company, locale, words["contract_title"], reference,
                  contract["number"])
