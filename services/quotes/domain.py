"""Quote rules: creation from the price book, edits, submit and approvals, send, the
customer's answer, expiry, voiding and revisions. Pure: each function returns the change
it makes and the events it causes as values (kit.changes.Change); the store writes both in
one single-document update.

A quote is one document across its versions: the current version's lines and status sit at
the top, earlier versions in `previous` (superseded), so a revision is one atomic write.
`quote_version` is the customer-facing version (1, 2, ...); the document's `version` is
kit.versioned's event counter (the sequence of its last event; the ETag is quotes.store's
`etag`).
"""
import uuid

from kit.changes import Change
from kit.errors import Conflict, Forbidden, Gone, Invalid
from kit.money import in_currency
from quotes import approvals, lifecycle
from quotes import lifecycle as L
from quotes.pricing import price

# What a revision carries over into version n+1 (a draft); the rest starts afresh.
CARRIED = ("currency", "lines", "quote_discount", "totals", "valid_until", "terms",
           "customer")
SNAPSHOT = (*CARRIED, "quote_version", "status", "approvals_required", "approvals",
            "submitted_at", "approved_at", "rejection", "sent_at", "response", "voided")
FRESH = {"approvals_required": [], "approvals": [], "submitted_at": None,
         "approved_at": None, "rejection": None, "sent_at": None, "link_id": None,
         "link_expires_at": None, "response": None, "voided": None}


# The refusals of a genuine customer link, with a `kind` as kit.links gives its own (that
# module reads config through nameko, so the domain does not import it).
class LinkRefused(Forbidden):
    """The link does not (or no longer) open this entity."""

    title = "Invalid link"


class LinkUsed(Conflict):
    title = "Link already used"


class LinkExpired(Gone):
    title = "Link expired"


# --- the price book --------------------------------------------------------------------------


def product(data, tax_rates):
    """A product's stored values: list prices in their currencies' minor units, a tax rate
    the configuration allows."""
    errors, prices = {}, {}
    if data["tax_rate"] not in tax_rates:
        errors["tax_rate"] = [f"One of {', '.join(str(r) for r in tax_rates)}."]
    for currency, amount in data["prices"].items():
        try:
            prices[currency] = in_currency(amount, currency)
        except ValueError as exc:
            errors.setdefault("prices", {})[currency] = [str(exc)]
    if errors:
        raise Invalid("The product is not valid.", errors=errors)
    return {"name_zh": data["name_zh"], "name_en": data["name_en"], "unit": data["unit"],
            "tax_rate": data["tax_rate"], "prices": prices}


# --- lines and prices ------------------------------------------------------------------------


# Amounts a quote's input gives in its currency (the rest are computed, or percents).
LINE_AMOUNTS = ("unit_price", "discount_amount")
QUOTE_AMOUNTS = ("discount_amount",)


def _amounts_in(values, keys, currency):
    """(`values` with the amounts under `keys` in `currency`'s minor units, {key: [error]})
    by the rule of product prices and payments: "1" CNY is 1.00, 1.005 CNY and 100.5 JPY
    are refused, never rounded (the customer would pay what nobody typed)."""
    values, errors = dict(values), {}
    for key in keys:
        if values.get(key) is not None:
            try:
                values[key] = in_currency(values[key], currency)
            except ValueError as exc:
                errors[key] = [str(exc)]
    return values, errors


def resolve_lines(lines, products, currency, tax_rates):
    """Input lines -> lines to price. Product lines copy the price book's name, unit, list
    price in `currency` and tax rate (a copy: later price changes never reach this quote);
    free-text lines bring their own. Raises Invalid naming each bad line's field."""
    out, errors = [], {}
    for number, line in enumerate(lines):
        line, bad = _amounts_in(line, LINE_AMOUNTS, currency)
        discounts = {k: line.get(k) for k in ("discount_percent", "discount_amount")}
        code = line.get("product_code")
        if code:
            product = products.get(code)
            list_price = (product or {}).get("prices", {}).get(currency)
            if product is None:
                bad["product_code"] = ["No such product in the price book."]
            elif list_price is None:
                bad["product_code"] = [f"This product has no list price in {currency}."]
            if line.get("unit_price") is not None:
                bad["unit_price"] = ["A product line takes the price book's price; give a "
                                     "discount instead."]
            if not bad:
                out.append({"product_code": code,
                            "description": line.get("description") or product["name_en"],
                            "name_zh": product["name_zh"], "name_en": product["name_en"],
                            "unit": product["unit"], "quantity": line["quantity"],
                            "unit_price": list_price, "list_price": list_price,
                            "tax_rate": product["tax_rate"], **discounts})
        else:
            for key in ("description", "unit_price", "tax_rate"):
                if line.get(key) is None:
                    bad[key] = ["Required on a line without a product_code."]
            if line.get("tax_rate") is not None and line["tax_rate"] not in tax_rates:
                bad["tax_rate"] = [f"One of {', '.join(str(r) for r in tax_rates)}."]
            if not bad:
                out.append({"product_code": None, "description": line["description"],
                            "name_zh": None, "name_en": None, "unit": line.get("unit"),
                            "quantity": line["quantity"], "unit_price": line["unit_price"],
                            "list_price": None, "tax_rate": line["tax_rate"], **discounts})
        if bad:
            errors[number] = bad
    if errors:
        raise Invalid("Some lines are not valid.", errors={"lines": errors})
    return out


def priced(data, products, tax_rates):
    """The priced part of a quote from its input: lines, quote discount, totals. Amounts
    are checked here, where the currency is known for a create and for a patch alike."""
    currency = data["currency"]
    data, errors = _amounts_in(data, QUOTE_AMOUNTS, currency)
    try:
        lines = resolve_lines(data["lines"], products, currency, tax_rates)
    except Invalid as exc:
        if not errors:
            raise
        errors.update(exc.extra["errors"])
    if errors:
        raise Invalid("The quote is not valid.", errors=errors)
    discount = {"percent": data.get("discount_percent"), "amount": data.get("discount_amount")}
    result = price(lines, currency, discount_percent=discount["percent"],
                   discount_amount=discount["amount"])
    totals = {k: result[k] for k in ("subtotal", "discount", "tax", "total",
                                      "discount_percent")}
    return {"currency": currency, "lines": result["lines"], "quote_discount": discount,
            "totals": totals}


def _check_validity(valid_until, now):
    if valid_until <= now:
        raise Invalid("valid_until lies in the past.",
                      errors={"valid_until": ["Must be in the future."]})


# --- event data ------------------------------------------------------------------------------


def _ref(quote):
    return {"quote_id": quote["_id"], "deal_id": quote["deal_id"],
            "version": quote["quote_version"]}


def _money(quote):
    return {"total": quote["totals"]["total"], "currency": quote["currency"]}


def created_event(quote):
    return ("quote.created", {**_ref(quote), "number": quote["number"], **_money(quote),
                              "owner_id": quote.get("owner_id")})


# --- creation and edits ----------------------------------------------------------------------


def quote_number(quote_id):
    return "Q-" + quote_id.replace("-", "")[:10].upper()


def check_deal(deal, deal_id):
    """Quotes are for open deals this service has heard of (its projection of deal.*)."""
    if deal is None:
        raise Conflict(f"No deal {deal_id} is known here (yet).", deal_id=deal_id,
                       reason="unknown_deal")
    if deal["status"] != "open":
        raise Conflict(f"The deal is {deal['status']}: it takes no quotes.", deal_id=deal_id,
                       deal_status=deal["status"], reason="closed_deal")


def new_quote(data, deal, products, now, *, actor=None, tax_rates=(13, 9, 6, 0)):
    """A draft quote (version 1) for an open deal; returns (quote, events)."""
    check_deal(deal, data["deal_id"])
    _check_validity(data["valid_until"], now)
    quote_id = str(uuid.uuid4())
    customer = data.get("customer") or {"name": deal.get("name"), "contact": None,
                                        "address": None}
    quote = {
        "_id": quote_id, "number": quote_number(quote_id), "deal_id": data["deal_id"],
        "owner_id": data.get("owner_id") or deal.get("owner_id") or actor,
        "created_by": actor, "customer": customer,
        **priced(data, products, tax_rates),
        "valid_until": data["valid_until"], "terms": data.get("terms"),
        "status": L.DRAFT, "quote_version": 1, **FRESH, "previous": [],
        "created_at": now, "updated_at": now,
    }
    return quote, [created_event(quote)]


def edit(quote, data, products, now, *, tax_rates=(13, 9, 6, 0)):
    """A draft's new lines, discount, validity or terms (no event: nothing was offered)."""
    lifecycle.check(quote["status"], "edit")
    changes = {}
    if "valid_until" in data:
        _check_validity(data["valid_until"], now)
        changes["valid_until"] = data["valid_until"]
    for key in ("terms", "customer"):
        if key in data:
            changes[key] = data[key]
    if any(k in data for k in ("lines", "discount_percent", "discount_amount", "currency")):
        current = {"currency": quote["currency"], "lines": quote["lines"],
                   "discount_percent": quote["quote_discount"]["percent"],
                   "discount_amount": _stored(quote["quote_discount"]["amount"])}
        merged = {**current, **{k: data[k] for k in current if k in data}}
        if "lines" not in data:  # re-price the stored lines as input again
            merged["lines"] = [_as_input(line) for line in quote["lines"]]
        changes.update(_priced_in(merged, quote, data, products, tax_rates))
    if not changes:
        return None
    return Change(set={**changes, "updated_at": now})


def _priced_in(merged, quote, data, products, tax_rates):
    """`priced` for an edit; a new currency that the amounts kept from the stored quote
    do not fit (100.50 CNY as JPY) is refused naming the currency too, as the caller did
    not send the amounts the errors point at."""
    try:
        return priced(merged, products, tax_rates)
    except Invalid as exc:
        currency, errors = merged["currency"], exc.extra.get("errors") or {}
        if currency == quote["currency"] or not any(
                key in errors and key not in data for key in ("lines", "discount_amount")):
            raise
        message = (f"The quote's amounts do not fit {currency}: give the lines and discount "
                   f"in {currency} with the new currency.")
        raise Invalid(message, errors={"currency": [message], **errors}) from None


def _stored(amount):
    """A stored amount as input again: its value, not the trailing zeros of its
    currency's minor units (100.00 CNY is 100 JPY; 100.50 CNY is not)."""
    return None if amount is None else amount.normalize()


def _as_input(line):
    keep = ("product_code", "description", "unit", "quantity", "discount_percent")
    out = {k: line.get(k) for k in keep}
    out["discount_amount"] = _stored(line.get("discount_amount"))
    if not line.get("product_code"):
        out.update(unit_price=_stored(line["unit_price"]), tax_rate=line["tax_rate"])
    return out


# --- submit and approvals --------------------------------------------------------------------


def submit(quote, rules, now, *, actor=None):
    """Submit a draft: the tiers its discount and total need, or approved at once."""
    lifecycle.check(quote["status"], "submit")
    if quote["valid_until"] <= now:
        raise Invalid("The quote's validity ended; set a later valid_until first.",
                      errors={"valid_until": ["Must be in the future."]})
    tiers = approvals.required(rules, quote["totals"], quote["currency"])
    events = [("quote.submitted", {**_ref(quote), **_money(quote),
                                   "requires_approval": bool(tiers), "submitted_at": now,
                                   "discount_percent": quote["totals"]["discount_percent"]})]
    change = {"status": L.SUBMITTED, "approvals_required": tiers, "approvals": [],
              "submitted_at": now, "updated_at": now}
    if not tiers:
        change.update(status=L.APPROVED, approved_at=now)
        events.append(("quote.approved", {**_ref(quote), "approver_id": None,
                                          "submitted_at": now, "approved_at": now}))
    return Change(set=change, events=events, actor=actor)


def approve(quote, who, now, *, tier=None, reason=None):
    """One tier's approval by `who` (recorded with when and why); the last one approves."""
    lifecycle.check(quote["status"], "approve")
    chosen = approvals.approver_tier(quote, who, tier)
    record = {"tier": chosen["key"], "by": who["sub"], "roles": list(who["roles"]),
              "at": now, "reason": reason}
    done = [*(quote.get("approvals") or []), record]
    change = {"approvals": done, "updated_at": now}
    events = []
    if len(approvals.pending({**quote, "approvals": done})) == 0:
        change.update(status=L.APPROVED, approved_at=now)
        events.append(("quote.approved", {**_ref(quote), "approver_id": who["sub"],
                                          "submitted_at": quote["submitted_at"],
                                          "approved_at": now}))
    return Change(set=change, events=events, actor=who["sub"])


def reject(quote, who, reason, now):
    lifecycle.check(quote["status"], "reject")
    approvals.may_reject(quote, who)
    return Change(
        set={"status": L.REJECTED, "rejection": {"by": who["sub"], "at": now,
                                                 "reason": reason}, "updated_at": now},
        events=[("quote.rejected", {**_ref(quote), "approver_id": who["sub"],
                                    "reason": reason, "submitted_at": quote["submitted_at"],
                                    "rejected_at": now})],
        actor=who["sub"])


# --- send and the customer's answer ----------------------------------------------------------


def send(quote, deal, link_id, now, *, actor=None):
    """Send an approved quote: it is immutable from now on, and one link answers it."""
    lifecycle.check(quote["status"], "send")
    check_deal(deal, quote["deal_id"])
    if quote["valid_until"] <= now:
        raise Conflict("The quote's validity ended before it was sent; revise it.",
                       valid_until=quote["valid_until"])
    return Change(
        set={"status": L.SENT, "sent_at": now, "link_id": link_id,
             "link_expires_at": quote["valid_until"], "updated_at": now},
        events=[("quote.sent", {**_ref(quote), **_money(quote),
                                "valid_until": quote["valid_until"]})],
        actor=actor)


def check_link(quote, link):
    """The link (verified and unexpired) must be this quote's current one, unused."""
    if link["quote_id"] != quote["_id"]:
        raise LinkRefused("This link is for another quote.", kind="other_quote")
    response = quote.get("response") or {}
    if response.get("link_id") == link["link_id"]:
        raise LinkUsed(f"This link was used already: the quote was {response['answer']} "
                       f"at {response['at'].isoformat()}.", kind="used",
                       answer=response["answer"])
    if link["version"] != quote["quote_version"] or link["link_id"] != quote.get("link_id"):
        raise LinkRefused("This link was replaced by a newer version of the quote.",
                          kind="replaced")


def answer(quote, link, action, now, *, name=None, reason=None, address=None):
    """The customer's accept or decline through the quote's link."""
    check_link(quote, link)
    lifecycle.check(quote["status"], action)
    if now >= quote["valid_until"]:
        raise LinkExpired(f"The quote expired at {quote['valid_until'].isoformat()}.",
                          kind="expired")
    status = L.ACCEPTED if action == "accept" else L.DECLINED
    actor = f"customer:{link['link_id']}"
    response = {"answer": status, "link_id": link["link_id"], "at": now, "name": name,
                "reason": reason, "address": address}
    if action == "accept":
        event = ("quote.accepted", {**_ref(quote), **_money(quote), "accepted_at": now})
    else:
        event = ("quote.declined", {**_ref(quote), "reason": reason})
    return Change(set={"status": status, "response": response, "updated_at": now},
                  events=[event], actor=actor)


# --- expiry, voiding, revision ---------------------------------------------------------------


def expire(quote, now):
    """quote.expired for a sent quote past its validity, else None (the timer's claim)."""
    if quote["status"] != L.SENT or quote["valid_until"] > now:
        return None
    return Change(set={"status": L.EXPIRED, "updated_at": now},
                  events=[("quote.expired", {**_ref(quote),
                                             "valid_until": quote["valid_until"]})],
                  actor="system:quotes")


def void(quote, reason, now, *, actor=None):
    lifecycle.check(quote["status"], "void")
    return Change(set={"status": L.VOIDED, "voided": {"at": now, "by": actor, "reason": reason},
                       "updated_at": now},
                  events=[("quote.voided", {**_ref(quote), "reason": reason,
                                            "voided_at": now})],
                  actor=actor)


def void_for_lost_deal(quote, now):
    """deal.lost: an open quote is voided; a final one stays as it is (None)."""
    if quote["status"] not in L.OPEN:
        return None
    return void(quote, "deal lost", now, actor="system:quotes")


def revise(quote, deal, now, *, actor=None, max_versions=20):
    """Version n+1 as a draft with the same lines; version n is superseded (kept in
    `previous`). Its prices stay those version n copied; an edit re-prices product lines."""
    lifecycle.check(quote["status"], "revise")
    check_deal(deal, quote["deal_id"])
    if quote["quote_version"] >= max_versions:
        raise Conflict(f"A quote has at most {max_versions} versions; start a new quote.")
    snapshot = {k: quote.get(k) for k in SNAPSHOT}
    snapshot.update(status=L.SUPERSEDED, superseded_at=now, was=quote["status"])
    after = {**quote, **FRESH, "status": L.DRAFT,
             "quote_version": quote["quote_version"] + 1, "updated_at": now}
    return Change(set={k: after[k] for k in (*FRESH, "status", "quote_version",
                                             "updated_at")},
                  push={"previous": snapshot}, events=[created_event(after)], actor=actor)
