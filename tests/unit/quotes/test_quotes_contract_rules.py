"""Contract rules: the schedule adds up to the amount, signing records the exact PDF's hash,
countersigning when configured, payments idempotent by key and never beyond the amount,
voiding by deal.lost only before execution."""
import datetime as dt
from decimal import Decimal

import pytest

from kit.errors import Conflict, Invalid
from kit.events import new_event
from quotes import contracts as C
from quotes import domain

D = Decimal
NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
SCHEDULE = [{"key": "signing", "label": "30 %", "percent": 30, "trigger": "signed",
             "due_days": 14},
            {"key": "delivery", "label": "70 %", "percent": 70, "trigger": "delivery_accepted",
             "due_days": 30}]
QUOTE = {"_id": "q1", "number": "Q-1", "quote_version": 2, "deal_id": "d1", "owner_id": "r1",
         "customer": {"name": "上海云杉科技有限公司", "contact": "张伟", "address": None},
         "currency": "CNY", "totals": {"total": D("1000.01")}, "terms": "Net 30.",
         "response": {"name": "张伟"}}


def contract(**changes):
    doc, events = C.new_contract(QUOTE, {"name": "Seller"}, SCHEDULE, "Terms.", NOW)
    return {**doc, "version": 1, **changes}


def apply(doc, change):
    out = {**doc, **change.set}
    for key, value in change.push.items():
        out[key] = [*out.get(key, []), value]
    return out


@pytest.mark.parametrize(("total", "currency", "shares"), [
    ("1000.01", "CNY", ["300.00", "700.01"]),
    ("999", "JPY", ["300", "699"]),
    ("0.05", "USD", ["0.02", "0.03"]),
])
def test_milestones_add_up_to_the_amount(total, currency, shares):
    got = C.milestones(SCHEDULE, D(total), currency)
    assert [str(m["amount"]) for m in got] == shares
    assert sum(m["amount"] for m in got) == D(total)


def test_a_schedule_must_add_up_to_100_percent():
    with pytest.raises(ValueError):
        C.milestones(SCHEDULE[:1], D("10.00"), "CNY")


def test_one_contract_per_quote_with_parties_and_terms():
    doc, events = C.new_contract(QUOTE, {"name": "Seller"}, SCHEDULE, "Terms.", NOW)
    assert doc["_id"] == C.contract_id_for_quote("q1") and doc["status"] == C.UNSIGNED
    assert doc["parties"]["buyer"] == {"name": "上海云杉科技有限公司", "representative": "张伟",
                                       "address": None}
    assert doc["terms"] == "Terms.\n\nNet 30."
    assert [e[0] for e in events] == ["contract.created"]


def link(contract_id="c", link_id="l1"):
    return {"contract_id": contract_id, "link_id": link_id}


def sent(**changes):
    doc = contract(**changes)
    return apply(doc, C.send(doc, "l1", NOW + dt.timedelta(days=14), NOW))


def test_a_new_link_replaces_the_last_and_is_sent_to_the_customer():
    doc = sent()
    expires = NOW + dt.timedelta(days=14)
    change = C.send(doc, "l2", expires, NOW)
    again = apply(doc, change)
    assert (again["link_id"], again["link_expires_at"]) == ("l2", expires)
    [(etype, data)] = change.events
    assert etype == "contract.sent"
    assert data == {"contract_id": doc["_id"], "quote_id": "q1", "deal_id": "d1",
                    "amount": D("1000.01"), "currency": "CNY", "number": doc["number"],
                    "link_expires_at": expires, "sent_at": NOW}
    new_event(etype, doc["_id"], data, 2)  # the catalog's contract holds it
    with pytest.raises(domain.LinkRefused):  # the link sent before stops working
        C.sign(again, link(doc["_id"]), "张伟", None, "ab" * 32, NOW)
    with pytest.raises(Conflict):
        C.send(apply(again, C.sign(again, link(doc["_id"], "l2"), "张伟", None, "ab" * 32,
                                   NOW)), "l3", expires, NOW)


def test_signing_records_name_time_address_and_the_pdf_hash():
    doc = sent()
    change = C.sign(doc, link(doc["_id"]), " 张伟 ", "10.0.0.9", "ab" * 32, NOW)
    signed = apply(doc, change)
    assert signed["signature"] == {"name": "张伟", "at": NOW, "address": "10.0.0.9",
                                   "pdf_sha256": "ab" * 32, "link_id": "l1"}
    assert signed["status"] == C.EXECUTED
    assert signed["milestones"][0]["due_at"] == NOW + dt.timedelta(days=14)
    assert signed["milestones"][1]["due_at"] is None  # waits for the delivery
    [(etype, data)] = change.events
    assert etype == "contract.signed" and data["pdf_sha256"] == "ab" * 32
    assert change.actor == "customer:l1"
    with pytest.raises(domain.LinkUsed):
        C.sign(signed, link(doc["_id"]), "x", None, "ab" * 32, NOW)


@pytest.mark.parametrize(("given", "error", "kind"), [
    (link("other"), domain.LinkRefused, "other_contract"),
    (link(link_id="old"), domain.LinkRefused, "replaced"),
])
def test_a_foreign_or_replaced_link_signs_nothing(given, error, kind):
    doc = sent()
    given = {**given, "contract_id": doc["_id"]} if given["contract_id"] == "c" else given
    with pytest.raises(error) as caught:
        C.sign(doc, given, "n", None, "ab" * 32, NOW)
    assert caught.value.extra["kind"] == kind


def test_a_blank_name_does_not_sign():
    doc = sent()
    with pytest.raises(Invalid):
        C.sign(doc, link(doc["_id"]), "  ", None, "ab" * 32, NOW)


def test_a_countersignature_executes_the_contract_when_required():
    doc = sent()
    signed = apply(doc, C.sign(doc, link(doc["_id"]), "n", None, "ab" * 32, NOW,
                               countersign_required=True))
    assert signed["status"] == C.SIGNED
    with pytest.raises(Conflict):
        C.record_payment(signed, payment(), NOW)
    change = C.countersign(signed, "dora", NOW)
    assert apply(signed, change)["status"] == C.EXECUTED
    assert [e[0] for e in change.events] == ["contract.signed"]


def payment(key="k1", amount="300.00", **changes):
    return {"payment_id": C.payment_id_for("c", key), "amount": D(amount),
            "method": "bank_transfer", "reference": "BANK-1", "received_at": NOW, **changes}


def executed():
    doc = sent()
    return apply(doc, C.sign(doc, link(doc["_id"]), "n", None, "ab" * 32, NOW))


def test_payments_are_idempotent_never_over_and_fully_paid_once():
    doc = executed()
    first = C.record_payment(doc, payment(), NOW, actor="fay")
    doc = apply(doc, first)
    assert [e[0] for e in first.events] == ["payment.received"]
    assert first.events[0][1]["first"] is True
    assert C.record_payment(doc, payment(), NOW) is None  # the same key again
    with pytest.raises(Conflict):
        C.record_payment(doc, payment(amount="1.00"), NOW)  # same key, other payment
    with pytest.raises(Conflict) as over:
        C.record_payment(doc, payment("k2", "700.02"), NOW)
    assert over.value.extra["reason"] == "over_payment"
    last = C.record_payment(doc, payment("k2", "700.01"), NOW)
    doc = apply(doc, last)
    assert [e[0] for e in last.events] == ["payment.received", "contract.fully_paid"]
    assert doc["paid_total"] == D("1000.01")
    assert [m["paid"] for m in doc["milestones"]] == [D("300.00"), D("700.01")]


@pytest.mark.parametrize(("changes", "field"), [
    ({"amount": D("1.001")}, "amount"),
    ({"received_at": NOW + dt.timedelta(days=1)}, "received_at"),
])
def test_a_bad_payment_is_invalid(changes, field):
    with pytest.raises(Invalid) as caught:
        C.record_payment(executed(), payment(**changes), NOW)
    assert field in caught.value.extra["errors"]


def test_milestones_fall_due_on_delivery_and_go_overdue():
    doc = executed()
    doc = apply(doc, C.delivery_accepted(doc, NOW, NOW))
    assert doc["milestones"][1]["due_at"] == NOW + dt.timedelta(days=30)
    assert C.delivery_accepted(doc, NOW, NOW) is None
    later = NOW + dt.timedelta(days=31)
    assert [m["key"] for m in C.overdue(doc, later)] == ["signing", "delivery"]


def test_deal_lost_voids_only_an_unexecuted_contract():
    doc = sent()
    change = C.void_for_lost_deal(doc, NOW)
    assert change.set["status"] == C.VOIDED and change.events[0][0] == "contract.voided"
    assert C.void_for_lost_deal(executed(), NOW) is None


def test_next_due_at_follows_the_first_unpaid_milestone_and_overdue_totals_add_up():
    doc = executed()
    assert doc["next_due_at"] == NOW + dt.timedelta(days=14)
    later = NOW + dt.timedelta(days=15)
    assert C.overdue_totals([doc], later) == {"CNY": (1, D("300.00"))}
    doc = apply(doc, C.record_payment(doc, payment(amount="100.00"), NOW))
    assert C.overdue_totals([doc], later) == {"CNY": (1, D("200.00"))}
    doc = apply(doc, C.record_payment(doc, payment("k2", "200.00"), NOW))
    assert doc["next_due_at"] is None and C.overdue_totals([doc], later) == {}
    assert C.overdue_totals([{**executed(), "status": C.VOIDED}], later) == {}
