"""Quote rules around the lifecycle table: creation from the price book for open deals,
draft edits, revisions (version n+1 supersedes n), the customer's answer, expiry and
voiding by a lost deal. Each result is checked against the event catalog."""
import datetime as dt
from decimal import Decimal

import pytest

from kit.errors import Conflict, Invalid
from kit.events import new_event, parse_event
from quotes import domain
from quotes import lifecycle as L

D = Decimal
NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=30)
DEAL = {"_id": "d1", "status": "open", "name": "上海云杉科技有限公司", "owner_id": "ann"}
PRODUCTS = {"P1": {"_id": "P1", "name_zh": "云服务", "name_en": "Cloud", "unit": "套",
                   "prices": {"CNY": D("1000.00")}, "tax_rate": 6}}


def catalog(etype, data):
    return parse_event(new_event(etype, "q", data, 1))[1]


def draft(**data):
    body = {"deal_id": "d1", "currency": "CNY", "valid_until": LATER,
            "lines": [{"product_code": "P1", "quantity": D(2)}], **data}
    quote, events = domain.new_quote(body, DEAL, PRODUCTS, NOW, actor="ann")
    for etype, payload in events:
        catalog(etype, payload)
    return {**quote, "version": 1}


def apply(quote, change):
    out = {**quote, **change.set}
    for key, value in change.push.items():
        out[key] = [*out.get(key, []), value]
    return out


@pytest.mark.parametrize(("deal", "reason"), [
    (None, "unknown_deal"),
    ({**DEAL, "status": "lost"}, "closed_deal"),
    ({**DEAL, "status": "won"}, "closed_deal"),
])
def test_quotes_are_for_open_deals_only(deal, reason):
    with pytest.raises(Conflict) as caught:
        domain.new_quote({"deal_id": "d1", "currency": "CNY", "valid_until": LATER,
                          "lines": []}, deal, PRODUCTS, NOW)
    assert caught.value.extra["reason"] == reason


def test_a_quote_copies_the_price_book_and_defaults_to_the_deal():
    quote = draft()
    [line] = quote["lines"]
    assert (line["unit_price"], line["list_price"], line["tax_rate"], line["name_zh"]) == \
        (D("1000.00"), D("1000.00"), 6, "云服务")
    assert quote["totals"]["total"] == D("2120.00")
    assert (quote["owner_id"], quote["created_by"], quote["customer"]["name"]) == \
        ("ann", "ann", "上海云杉科技有限公司")
    assert quote["number"].startswith("Q-") and quote["status"] == L.DRAFT


def test_a_validity_in_the_past_is_refused():
    with pytest.raises(Invalid) as caught:
        draft(valid_until=NOW)
    assert "valid_until" in caught.value.extra["errors"]


def test_a_draft_edit_prices_again_and_emits_nothing():
    quote = draft()
    dearer = {"P1": {**PRODUCTS["P1"], "prices": {"CNY": D("1100.00")}}}
    change = domain.edit(quote, {"discount_percent": D("10")}, dearer, NOW)
    assert change.events == [] and change.set["totals"]["total"] == D("2098.80")
    assert domain.edit(quote, {}, PRODUCTS, NOW) is None


def sent(quote=None):
    quote = quote or draft()
    quote = apply(quote, domain.submit(quote, [], NOW, actor="ann"))
    return apply(quote, domain.send(quote, DEAL, "link-1", NOW))


def test_a_revision_supersedes_the_sent_version_and_keeps_its_prices():
    quote = sent()
    change = domain.revise(quote, DEAL, NOW, actor="ann")
    revised = apply(quote, change)
    assert (revised["status"], revised["quote_version"], revised["link_id"]) == \
        (L.DRAFT, 2, None)
    [previous] = revised["previous"]
    assert (previous["status"], previous["was"], previous["quote_version"]) == \
        (L.SUPERSEDED, L.SENT, 1)
    assert revised["lines"] == quote["lines"]
    [(etype, data)] = change.events
    assert etype == "quote.created" and catalog(etype, data)["version"] == 2


def test_revisions_are_bounded():
    with pytest.raises(Conflict):
        domain.revise({**sent(), "quote_version": 20}, DEAL, NOW, max_versions=20)


def link(quote, **changes):
    return {"quote_id": quote["_id"], "link_id": "link-1", "version": 1, **changes}


def test_the_customer_declines_with_a_reason():
    quote = sent()
    change = domain.answer(quote, link(quote), "decline", NOW, reason="too dear",
                           address="10.1.1.1")
    assert change.set["status"] == L.DECLINED and change.actor == "customer:link-1"
    assert change.set["response"]["address"] == "10.1.1.1"
    assert catalog(*change.events[0])["reason"] == "too dear"


def test_an_answer_after_the_validity_is_refused():
    quote = sent()
    with pytest.raises(domain.LinkExpired):
        domain.answer(quote, link(quote), "accept", LATER)


def test_expiry_claims_only_sent_quotes_past_their_validity():
    quote = sent()
    assert domain.expire(quote, NOW) is None
    change = domain.expire(quote, LATER)
    assert change.set["status"] == L.EXPIRED and change.actor == "system:quotes"
    assert domain.expire(draft(), LATER) is None


@pytest.mark.parametrize(("status", "voided"), [
    (L.DRAFT, True), (L.SUBMITTED, True), (L.APPROVED, True), (L.REJECTED, True),
    (L.SENT, True), (L.ACCEPTED, False), (L.DECLINED, False), (L.EXPIRED, False),
    (L.VOIDED, False), (L.SUPERSEDED, False),
])
def test_a_lost_deal_voids_exactly_the_open_quotes(status, voided):
    change = domain.void_for_lost_deal({**draft(), "status": status}, NOW)
    assert (change is not None) == voided
    if change:
        assert catalog(*change.events[0])["reason"] == "deal lost"


# schemathesis: a decimal string's range is documented as a pattern, so a value the OpenAPI
# document calls valid is accepted and one it calls invalid is refused
def _documented(schema, field, value):
    import re

    from quotes import schemas as S
    return re.fullmatch(getattr(S, schema)().fields[field].metadata["pattern"], value) \
        is not None


@pytest.mark.parametrize(("schema", "field", "value", "valid"), [
    ("LineIn", "discount_percent", "0", True), ("LineIn", "discount_percent", "100", True),
    ("LineIn", "discount_percent", "12.5", True), ("LineIn", "discount_percent", "100.01", False),
    ("LineIn", "discount_percent", "1234.50", False),
    ("QuoteIn", "discount_percent", "101", False),
    ("LineIn", "quantity", "0", False), ("LineIn", "quantity", "0.000", False),
    ("LineIn", "quantity", "0.001", True), ("LineIn", "quantity", "2", True),
    ("LineIn", "quantity", "1000000000", False),
    ("MilestoneIn", "percent", "0", False), ("MilestoneIn", "percent", "0.00", False),
    ("MilestoneIn", "percent", "0.01", True), ("MilestoneIn", "percent", "100", True),
    ("MilestoneIn", "percent", "1234.50", False),
    ("PaymentIn", "amount", "0", False), ("PaymentIn", "amount", "0.0000", False),
    ("PaymentIn", "amount", "0.0001", True), ("PaymentIn", "amount", "1234.50", True),
])
def test_a_documented_range_pattern_agrees_with_validation(schema, field, value, valid):
    from marshmallow import ValidationError

    from quotes import schemas as S
    assert _documented(schema, field, value) is valid
    try:
        getattr(S, schema)().fields[field].deserialize(value)
        loads = True
    except ValidationError:
        loads = False
    assert loads is valid


@pytest.mark.parametrize("schema", ["ProductIn", "ProductPut"])
def test_a_product_documents_one_to_fifty_prices(schema):
    from quotes import schemas as S
    metadata = getattr(S, schema)().fields["prices"].metadata
    assert (metadata["minProperties"], metadata["maxProperties"]) == (1, 50)


# --- amounts in the quote's currency ---------------------------------------------------------
def free_line(**changes):
    return {"description": "实施服务", "quantity": D(1), "unit_price": D("100"), "tax_rate": 0,
            **changes}


def errors_of(caught):
    return caught.value.extra["errors"]


@pytest.mark.parametrize(("currency", "body", "where", "message"), [
    ("CNY", {"lines": [free_line(unit_price=D("1.005"))]}, ("lines", 0, "unit_price"),
     "CNY amounts have at most 2 decimal places."),
    ("JPY", {"lines": [free_line(unit_price=D("100.5"))]}, ("lines", 0, "unit_price"),
     "JPY amounts have no decimal places."),
    ("CNY", {"lines": [free_line(discount_amount=D("1.001"))]},
     ("lines", 0, "discount_amount"), "CNY amounts have at most 2 decimal places."),
    ("CNY", {"lines": [{"product_code": "P1", "quantity": D(1),
                        "discount_amount": D("1.001")}]},
     ("lines", 0, "discount_amount"), "CNY amounts have at most 2 decimal places."),
    ("JPY", {"lines": [free_line()], "discount_amount": D("0.5")}, ("discount_amount",),
     "JPY amounts have no decimal places."),
])
def test_an_amount_with_more_places_than_the_currency_is_refused(currency, body, where,
                                                                  message):
    with pytest.raises(Invalid) as caught:
        draft(currency=currency, **body)
    found = errors_of(caught)
    for key in where:
        found = found[key]
    assert found == [message]


@pytest.mark.parametrize(("currency", "given", "kept"), [
    ("CNY", "1", "1.00"), ("CNY", "100.5", "100.50"), ("JPY", "100", "100"),
    ("USD", "0.1", "0.10"),
])
def test_accepted_amounts_are_kept_in_the_currency_s_minor_units(currency, given, kept):
    quote = draft(currency=currency, lines=[free_line(unit_price=D(given))],
                  discount_amount=D(given))
    [line] = quote["lines"]
    assert str(line["unit_price"]) == kept
    assert str(quote["quote_discount"]["amount"]) == kept


@pytest.mark.parametrize(("data", "where"), [
    ({"discount_amount": D("0.001")}, ("discount_amount",)),
    ({"lines": [free_line(unit_price=D("1.005"))]}, ("lines", 0, "unit_price")),
])
def test_an_edit_checks_its_amounts_in_the_quote_s_currency(data, where):
    quote = draft(lines=[free_line()])
    with pytest.raises(Invalid) as caught:
        domain.edit(quote, data, PRODUCTS, NOW)
    found = errors_of(caught)
    for key in where:
        found = found[key]
    assert found == ["CNY amounts have at most 2 decimal places."]


@pytest.mark.parametrize(("stored", "field"), [
    ({"lines": [free_line(unit_price=D("100.50"))]}, ("lines", 0, "unit_price")),
    ({"lines": [free_line(discount_amount=D("0.50"))]}, ("lines", 0, "discount_amount")),
    ({"lines": [free_line()], "discount_amount": D("0.50")}, ("discount_amount",)),
])
def test_a_new_currency_the_kept_amounts_do_not_fit_is_refused(stored, field):
    quote = draft(**stored)
    with pytest.raises(Invalid) as caught:
        domain.edit(quote, {"currency": "JPY"}, PRODUCTS, NOW)
    found = errors_of(caught)
    assert "do not fit JPY" in found["currency"][0]
    for key in field:
        found = found[key]
    assert found == ["JPY amounts have no decimal places."]


def test_a_new_currency_the_kept_amounts_fit_takes_them_in_its_minor_units():
    quote = draft(lines=[free_line(unit_price=D("100.00"), discount_amount=D("10.00"))],
                  discount_amount=D("5.00"))
    change = domain.edit(quote, {"currency": "JPY"}, PRODUCTS, NOW)
    [line] = change.set["lines"]
    assert (str(line["unit_price"]), str(line["discount_amount"]),
            str(change.set["quote_discount"]["amount"]), change.set["currency"]) == \
        ("100", "10", "5", "JPY")


def test_a_new_currency_with_new_lines_in_it_is_taken():
    quote = draft(lines=[free_line(unit_price=D("100.50"))])
    change = domain.edit(quote, {"currency": "JPY", "lines": [free_line(unit_price=D(101))]},
                         PRODUCTS, NOW)
    assert change.set["totals"]["total"] == D("101")
