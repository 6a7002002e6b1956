"""Quote PDFs rendered per second, for a 50-line quote in CNY (zh-CN, Chinese descriptions).

The raw limit is the PDF library's own floor on the same content in the same run: the same
cell texts drawn with plain `drawString` calls in the same embedded CJK font on the same
number of pages (no layout, no tables, no wrapping). The ratio says what the layout costs.
Rendering is pure CPU in the calling process (no broker, no database), so a service that
renders blocks its eventlet hub for the time per PDF reported here.

`python -m bench quote_documents` runs it after the raw limits; QUOTE_PDF_BENCH_SECONDS
(default 5) sets how long each figure is measured.
"""
import io
import os
import re
import time
from decimal import ROUND_HALF_UP, Decimal

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from bench.harness import percentile
from quotes import documents

SECONDS = float(os.environ.get("QUOTE_PDF_BENCH_SECONDS", 5))
LINES = 50
COMPANY = {"name": {"en": "Dealflow Trading Co., Ltd.", "zh-CN": "德孚贸易（上海）有限公司"},
           "address": "上海市浦东新区世纪大道100号", "phone": "+86 21 5555 0100",
           "email": "sales@dealflow.example", "tax_id": "91310000MA1FL0XX1A"}


def _cents(amount):
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def fifty_line_quote():
    lines = []
    for n in range(1, LINES + 1):
        quantity, price, rate = Decimal(n % 7 + 1), Decimal(f"{n * 137}.{n % 100:02d}"), \
            Decimal("13" if n % 3 else "6")
        discount = _cents(price * quantity * Decimal("0.05")) if n % 4 == 0 else Decimal("0.00")
        net = _cents(price * quantity) - discount
        tax = _cents(net * rate / 100)
        lines.append({"description": f"工业路由器 R{n:03d} 含三年质保 (3-year warranty)",
                      "quantity": quantity, "unit": "台", "unit_price": price,
                      "discount": discount, "tax_rate": rate, "net": net, "tax": tax,
                      "total": net + tax})
    subtotal = sum((line["net"] for line in lines), Decimal(0))
    tax = sum((line["tax"] for line in lines), Decimal(0))
    discount = Decimal("1000.00")
    return {"number": "Q-2026-000050", "version": 1, "currency": "CNY",
            "customer": {"name": "张伟", "company": "上海云杉科技有限公司"},
            "issued_on": "2026-11-27", "valid_until": "2026-12-31", "lines": lines,
            "subtotal": subtotal, "discount": discount, "tax": tax,
            "total": subtotal - discount + tax,
            "terms": "付款方式：合同签订后支付30%，验收后支付70%。\n\nDelivery within 30 days."}


def _raw_pdf(cells, pages):
    """The floor: the same strings, one per row, straight onto `pages` pages."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=1, initialFontName=documents._font())
    per_page = -(-len(cells) // pages)
    for start in range(0, len(cells), per_page):
        canvas.setFont(documents.FONT, 8)
        for row, text in enumerate(cells[start:start + per_page]):
            canvas.drawString(40, 800 - (row % 90) * 9, text)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _rate(render, seconds):
    render()  # warm: the font file is read once per process
    times, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        render()
        times.append(time.perf_counter() - t0)
    return len(times) / sum(times), times


def measure(seconds=SECONDS):
    quote = fifty_line_quote()
    pdf = documents.render_quote_pdf(quote, COMPANY, "zh-CN")
    pages = len(re.findall(rb"/Type /Page[^s]", pdf))
    rate, times = _rate(lambda: documents.render_quote_pdf(quote, COMPANY, "zh-CN"), seconds)
    cells = [" ".join(str(value) for value in line.values()) for line in quote["lines"]]
    raw_rate, _ = _rate(lambda: _raw_pdf(cells, max(pages, 1)), seconds)
    return {
        "quote_pdf_lines": LINES,
        "quote_pdf_pages": pages,
        "quote_pdf_bytes": len(pdf),
        "quote_pdfs_per_s": round(rate, 1),
        "quote_pdf_p50_ms": round(percentile(times, 50) * 1000, 1),
        "quote_pdf_p99_ms": round(percentile(times, 99) * 1000, 1),
        "raw_canvas_pdfs_per_s": round(raw_rate, 1),
        # three significant figures: a loaded machine can put the ratio below 0.0005
        "quote_pdfs_per_s / raw_canvas_pdfs_per_s": float(f"{rate / raw_rate:.3g}"),
    }


def run(ctx):
    return measure()


if __name__ == "__main__":
    print(measure())
