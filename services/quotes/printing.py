"""Quote and contract documents as the PDF module (quotes.documents, helper "docs") takes
them: plain dicts of what to print, built from our documents. Nothing is computed here
but the figures' arrangement: the domain computed every amount.

HOOK: quotes.documents lands separately; until it does, rendering answers 503 and a
contract cannot be signed (its signature records the SHA-256 of the exact PDF).
"""
import hashlib

from kit.errors import Unavailable


def _renderer(name):
    try:
        from quotes import documents
    except ImportError:
        raise Unavailable("PDF rendering is not installed in this build.") from None
    return getattr(documents, name)


def quote_document(quote):
    """Lines print their own discount; the quote-level discount prints once below them
    (each line's share of it is folded back into the line's printed total)."""
    lines = [{"description": line["description"], "quantity": line["quantity"],
              "unit": line.get("unit") or "", "unit_price": line["unit_price"],
              "discount": line["line_discount"], "tax_rate": line["tax_rate"],
              "net": line["gross"] - line["line_discount"], "tax": line["tax"],
              "total": line["total"] + line["quote_discount"]}
             for line in quote["lines"]]
    quote_level = sum((line["quote_discount"] for line in quote["lines"]),
                      start=quote["totals"]["tax"] * 0)
    return {"number": quote["number"], "version": quote["quote_version"],
            "currency": quote["currency"], "customer": quote.get("customer") or {},
            "issued_on": quote.get("sent_at") or quote["created_at"],
            "valid_until": quote["valid_until"], "lines": lines,
            "subtotal": sum((line["net"] for line in lines), start=quote_level * 0),
            "discount": quote_level, "tax": quote["totals"]["tax"],
            "total": quote["totals"]["total"], "terms": quote.get("terms")}


def contract_document(contract):
    return {"number": contract["number"], "currency": contract["currency"],
            "amount": contract["amount"], "quote_number": contract.get("quote_number"),
            "quote_version": contract.get("quote_version"),
            "issued_on": contract["created_at"], "parties": contract["parties"],
            "milestones": [{"name": m["label"], "percent": m["percent"], "amount": m["amount"],
                            "due": m.get("due_at") or m.get("due_text")}
                           for m in contract["milestones"]],
            "terms": contract.get("terms") or ""}


def quote_pdf(quote, company, locale):
    return _renderer("render_quote_pdf")(quote_document(quote), company, locale)


def contract_pdf(contract, company, locale):
    return _renderer("render_contract_pdf")(contract_document(contract), company, locale)


def sha256(data):
    return hashlib.sha256(data).hexdigest()
