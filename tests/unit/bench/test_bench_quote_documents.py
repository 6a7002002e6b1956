"""The PDF benchmark's quote is one the documents accept (its totals add up like the
domain's), and a short measurement gives every figure `make bench` reports."""
from decimal import Decimal

from bench import quote_documents


def test_the_fifty_line_quote_adds_up():
    quote = quote_documents.fifty_line_quote()
    assert len(quote["lines"]) == 50
    for line in quote["lines"]:
        assert line["net"] + line["tax"] == line["total"]
        assert line["total"] == line["total"].quantize(Decimal("0.01"))
    assert quote["total"] == sum(line["net"] for line in quote["lines"]) - quote["discount"] \
        + sum(line["tax"] for line in quote["lines"])


def test_a_short_measurement_reports_rates_and_their_ratio():
    figures = quote_documents.measure(seconds=0.2)
    assert figures["quote_pdf_pages"] >= 2
    assert figures["quote_pdfs_per_s"] > 0 and figures["raw_canvas_pdfs_per_s"] > 0
    assert 0 < figures["quote_pdfs_per_s / raw_canvas_pdfs_per_s"]
