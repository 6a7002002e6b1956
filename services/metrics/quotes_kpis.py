"""Quote and contract KPIs, as pure functions of projection facts (hooked into
metrics.domain; no I/O): quotes by current status, the average discount of submitted
quotes (a sum and a count: the rules divide), contracts by current status, and contracted
and collected revenue per currency. Money stays Decimal until rendering.

Contracts are one projection each (collection `contracts`): their contract.* facts and
the payment.received facts of their payments, keyed by contract_id.
"""
from decimal import Decimal

# event type prefix -> (projection collection, id field in the event data)
KINDS = {"contract": ("contracts", "contract_id"), "payment": ("contracts", "contract_id")}

# what the KPIs need of each event (no names, no signatures' details)
KEEP = {
    "quote.submitted": ("deal_id", "submitted_at", "discount_percent"),
    "quote.voided": ("deal_id",),
    "contract.created": ("deal_id", "amount", "currency"),
    "contract.signed": ("amount", "currency", "signed_at"),
    "contract.voided": (),
    "payment.received": ("paid", "currency", "received_at"),
    "contract.fully_paid": ("paid_at",),
}

# a quote's status now: that of its highest-sequence fact (a revision's quote.created is a
# draft again)
QUOTE_CURRENT = {"quote.created": "draft", "quote.submitted": "submitted",
                 "quote.approved": "approved", "quote.rejected": "rejected",
                 "quote.sent": "sent", "quote.accepted": "accepted",
                 "quote.declined": "declined", "quote.expired": "expired",
                 "quote.voided": "voided"}
QUOTE_CURRENT_STATUSES = tuple(dict.fromkeys(QUOTE_CURRENT.values()))
CONTRACT_CURRENT = {"contract.created": "unsigned", "contract.signed": "signed",
                    "contract.fully_paid": "fully_paid", "contract.voided": "voided"}
CONTRACT_STATUSES = tuple(CONTRACT_CURRENT.values())


def quote_series(facts, key):
    """(key, value, ...) of one quote, `facts` in sequence order."""
    out = ()
    statuses = [QUOTE_CURRENT[f["type"]] for f in facts if f["type"] in QUOTE_CURRENT]
    if statuses:
        out += (key("quotes_current", statuses[-1]), 1)
    submitted = [f for f in facts if f["type"] == "quote.submitted"
                 and f.get("discount_percent") is not None]
    if submitted:  # the latest submission's discount (a revision submitted again)
        out += (key("quote_discount_percent_sum"), Decimal(submitted[-1]["discount_percent"]),
                key("quote_discount_quotes"), 1)
    return out


def contract_series(facts, key):
    """(key, value, ...) of one contract, `facts` in sequence order."""
    out = ()
    statuses = [CONTRACT_CURRENT[f["type"]] for f in facts if f["type"] in CONTRACT_CURRENT]
    if statuses:
        out += (key("contracts_current", statuses[-1]), 1)
    signed = next((f for f in facts if f["type"] == "contract.signed"), None)
    if signed is not None:
        out += (key("contracted_amount", signed["currency"]), Decimal(signed["amount"]))
    for fact in facts:
        if fact["type"] == "payment.received":
            out += (key("collected_amount", fact["currency"]), Decimal(fact["paid"]))
    return out


def gauges():
    """(key name, help, label names, label sets always shown) for metrics.live."""
    return (
        ("quotes_current", "Quotes in each status now (a revision is a draft again)",
         ["status"], [(s,) for s in QUOTE_CURRENT_STATUSES]),
        ("quote_discount_percent_sum", "Sum of submitted quotes' discount percent (their "
         "latest submission); divided by quote_discount_quotes it is the average discount",
         [], [()]),
        ("quote_discount_quotes", "Submitted quotes whose discount is in the sum", [], [()]),
        ("contracts_current", "Contracts in each status now", ["status"],
         [(s,) for s in CONTRACT_STATUSES]),
        ("contracted_amount", "Signed contracts' amount, by currency", ["currency"], []),
        ("collected_amount", "Payments received on contracts, by currency", ["currency"], []),
    )
