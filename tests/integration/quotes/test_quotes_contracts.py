"""Contracts through the real service: an accepted quote becomes one contract; the customer
signs through a signed link (typed name, time, address and the SHA-256 of the exact PDF
they could download are kept); payments are idempotent by key and never exceed the
amount; the PDFs read back with their Chinese names and exact totals."""
import hashlib
import subprocess

import pytest

from tests.integration.quotes.quotes_support import (
    Quotes,
    deal_lost,
    known_deal,
    new_deal_id,
    publish,
    quotes_config,
    start_quotes,
    token,
    wait_for,
)
from tests.support.amqp import Subscriber


@pytest.fixture
def accepted(container_factory, make_config, api, rabbit_config, mongo_db):
    """A quote accepted by its customer, and the contract it became."""
    def make(**overrides):
        config = quotes_config(make_config, **overrides)
        start_quotes(container_factory, config)
        http = api(config)
        quotes = Quotes(http, config)
        quotes.product()
        deal_id = new_deal_id()
        known_deal(mongo_db, rabbit_config["AMQP_URI"], deal_id)
        quote = quotes.must_create(deal_id, customer={"name": "上海云杉科技有限公司",
                                                      "contact": "张伟"})
        quotes.must(quote["id"], "submit")
        sent = quotes.must(quote["id"], "send")
        customer = api(config, auth={})
        resp = customer.post(f"/api/v1/quotes/{quote['id']}/accept",
                             json={"token": sent["link"]["token"], "name": "张伟"})
        assert resp.status_code == 200, resp.text

        def contract():
            items = http.get("/api/v1/contracts", params={"deal_id": deal_id}).json()["items"]
            return items[0] if items else None
        made = wait_for(contract)
        assert made, "the accepted quote never became a contract"
        return quotes, http, customer, made, quote, config, deal_id
    return make


def test_contracts_list_by_status_and_scope_without_a_deal(accepted):
    _, http, customer, contract, _, _, deal_id = accepted()
    finance = token("fay", "finance")

    def listed(headers=finance, **params):
        resp = http.get("/api/v1/contracts", params=params, headers=headers)
        assert resp.status_code == 200, resp.text
        return [c["id"] for c in resp.json()["items"]]

    assert listed() == [contract["id"]]
    assert listed(status="unsigned") == [contract["id"]]
    assert listed(status="executed") == []
    assert listed(deal_id=deal_id, status="unsigned") == [contract["id"]]
    assert listed(headers=token("rep-1", "rep")) == [contract["id"]]  # the quote's owner
    assert listed(headers=token("rep-2", "rep")) == []
    link = http.post(f"/api/v1/contracts/{contract['id']}/send").json()
    assert customer.post(f"/api/v1/contracts/{contract['id']}/sign",
                         json={"token": link["token"], "name": "张伟"}).status_code == 200
    assert listed(status="unsigned") == []
    assert listed(status="executed") == [contract["id"]]
    page = http.get("/api/v1/contracts", params={"limit": 1}, headers=finance).json()
    assert page["next_cursor"] is None and len(page["items"]) == 1
    bad = http.get("/api/v1/contracts", params={"status": "paid"}, headers=finance)
    assert bad.status_code == 400 and "status" in bad.json()["errors"]


def pdf_text(data):
    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=data,
                          capture_output=True, check=True).stdout.decode()


def test_the_quote_pdf_reads_back_with_the_customer_and_totals(accepted):
    quotes, http, _, _, quote, _, _ = accepted()
    resp = http.get(f"/api/v1/quotes/{quote['id']}/pdf")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/pdf"
    text = pdf_text(resp.content)
    assert "上海云杉科技有限公司" in text
    assert "2,120.00" in text  # 2 x 1000.00 + 6 % tax, the exact total


def test_signing_keeps_the_hash_of_the_exact_pdf_and_payments_follow(
        accepted, rabbit_config):
    sub = Subscriber(rabbit_config["AMQP_URI"], "quotes", "#", name="contract-events")
    quotes, http, customer, contract, quote, config, deal_id = accepted()
    assert (contract["amount"], contract["currency"], contract["status"]) == \
        ("2120.00", "CNY", "unsigned")
    assert [m["amount"] for m in contract["milestones"]] == ["636.00", "1484.00"]
    assert contract["parties"]["buyer"]["name"] == "上海云杉科技有限公司"

    link = http.post(f"/api/v1/contracts/{contract['id']}/send").json()
    view = customer.get("/api/v1/public/contracts", params={"token": link["token"]})
    assert view.status_code == 200 and view.json()["number"] == contract["number"]
    pdf = customer.get("/api/v1/public/contracts/pdf", params={"token": link["token"]})
    assert pdf.status_code == 200
    assert "上海云杉科技有限公司" in pdf_text(pdf.content)
    unsigned = customer.post(f"/api/v1/contracts/{contract['id']}/sign",
                             json={"token": link["token"] + "x", "name": "张伟"})
    assert unsigned.status_code == 403
    signed = customer.post(f"/api/v1/contracts/{contract['id']}/sign",
                           json={"token": link["token"], "name": "张伟"})
    assert signed.status_code == 200, signed.text
    signature = signed.json()["signature"]
    assert signature["name"] == "张伟" and signature["address"] == "127.0.0.1"
    assert signature["pdf_sha256"] == hashlib.sha256(pdf.content).hexdigest()
    again = customer.post(f"/api/v1/contracts/{contract['id']}/sign",
                          json={"token": link["token"], "name": "张伟"})
    assert again.status_code == 409 and again.json()["kind"] == "used"

    finance = {**token("fay", "finance")}
    pay = {"amount": "636.00", "method": "bank_transfer", "reference": "ICBC-1",
           "received_at": "2026-01-10T10:00:00+08:00"}
    path = f"/api/v1/contracts/{contract['id']}/payments"
    assert http.post(path, json=pay, headers=finance).status_code == 428
    rep = http.post(path, json=pay, headers={**token("rep-1", "rep"), "Idempotency-Key": "a"})
    assert rep.status_code == 403
    first = http.post(path, json=pay, headers={**finance, "Idempotency-Key": "ICBC-1"})
    assert first.status_code == 201, first.text
    replay = http.post(path, json=pay, headers={**finance, "Idempotency-Key": "ICBC-1"})
    assert replay.status_code == 200 and replay.json()["paid_total"] == "636.00"
    other = http.post(path, json={**pay, "amount": "1.00"},
                      headers={**finance, "Idempotency-Key": "ICBC-1"})
    assert other.status_code == 409
    over = http.post(path, json={**pay, "amount": "1484.01"},
                     headers={**finance, "Idempotency-Key": "ICBC-2"})
    assert over.status_code == 409 and over.json()["reason"] == "over_payment"
    last = http.post(path, json={**pay, "amount": "1484.00"},
                     headers={**finance, "Idempotency-Key": "ICBC-2"})
    assert last.status_code == 201 and last.json()["fully_paid_at"]

    events = [e for e in sub.drain(expect=12, timeout=10) + sub.drain(timeout=1)
              if e["type"].split(".")[0] in ("contract", "payment")]
    assert [e["type"] for e in events] == ["contract.created", "contract.sent",
                                           "contract.signed", "payment.received",
                                           "payment.received", "contract.fully_paid"]
    assert events[1]["data"]["number"] == contract["number"]
    assert events[1]["data"]["link_expires_at"] == link["expires_at"]
    assert events[2]["data"]["pdf_sha256"] == signature["pdf_sha256"]
    assert [e["data"]["first"] for e in events[3:5]] == [True, False]
    assert "token" not in repr(events) and "张伟" not in repr(events)
    sub.close()


def test_a_countersignature_executes_the_contract(accepted):
    quotes, http, customer, contract, _, _, _ = accepted(
        CONTRACTS={"countersign_required": True})
    link = http.post(f"/api/v1/contracts/{contract['id']}/send").json()
    signed = customer.post(f"/api/v1/contracts/{contract['id']}/sign",
                           json={"token": link["token"], "name": "张伟"}).json()
    assert signed["status"] == "signed"
    path = f"/api/v1/contracts/{contract['id']}/countersign"
    assert http.post(path, headers=token("m-1", "manager")).status_code == 403
    done = http.post(path, headers=token("dora", "director"))
    assert done.status_code == 200 and done.json()["status"] == "executed"
    assert done.json()["countersignature"]["by"] == "dora"


def test_deal_lost_voids_an_unsigned_contract(accepted, rabbit_config):
    quotes, http, _, contract, _, _, deal_id = accepted()
    publish(rabbit_config["AMQP_URI"], deal_lost(deal_id, sequence=9))
    assert wait_for(lambda: http.get(f"/api/v1/contracts/{contract['id']}").json()[
        "status"] == "voided")


def test_overdue_milestones_are_counted_until_paid(accepted, rabbit_config):
    due_at_once = [{"key": "signing", "label": "30 %", "percent": 30, "trigger": "signed",
                    "due_days": 0},
                   {"key": "delivery", "label": "70 %", "percent": 70,
                    "trigger": "delivery_accepted", "due_days": 30}]
    quotes, http, customer, contract, _, _, _ = accepted(CONTRACTS={
        "payment_schedule": due_at_once, "overdue_check_interval_seconds": 0.1})
    link = http.post(f"/api/v1/contracts/{contract['id']}/send").json()
    customer.post(f"/api/v1/contracts/{contract['id']}/sign",
                  json={"token": link["token"], "name": "张伟"})

    def gauge(name):
        text = http.get("/metrics").text
        line = next((x for x in text.splitlines()
                     if x.startswith(f'{name}{{currency="CNY"}}')), None)
        return float(line.split()[-1]) if line else None
    assert wait_for(lambda: gauge("dealflow_contract_milestones_overdue") == 1.0)
    assert gauge("dealflow_contract_overdue_amount") == 636.0
    http.post(f"/api/v1/contracts/{contract['id']}/payments",
              json={"amount": "636.00", "method": "bank_transfer",
                    "received_at": "2026-01-10T10:00:00+08:00"},
              headers={**token("fay", "finance"), "Idempotency-Key": "p-1"})
    assert wait_for(lambda: gauge("dealflow_contract_milestones_overdue") == 0.0)


def test_a_contract_may_have_its_own_schedule_until_it_is_signed(accepted):
    quotes, http, customer, contract, _, _, _ = accepted()
    path = f"/api/v1/contracts/{contract['id']}/schedule"
    link = http.post(f"/api/v1/contracts/{contract['id']}/send").json()
    bad = http.put(path, json={"milestones": [
        {"key": "all", "label": "x", "percent": "90", "trigger": "signed"}]})
    assert bad.status_code == 400 and "100" in bad.json()["errors"]["milestones"][0]
    three = [{"key": "advance", "label": "10 % advance", "percent": "10", "trigger": "signed"},
             {"key": "signing", "label": "40 % on signing", "percent": "40",
              "trigger": "signed", "due_days": 7},
             {"key": "delivery", "label": "50 % on acceptance", "percent": "50",
              "trigger": "delivery_accepted", "due_days": 30}]
    done = http.put(path, json={"milestones": three})
    assert done.status_code == 200, done.text
    assert [m["amount"] for m in done.json()["milestones"]] == ["212.00", "848.00", "1060.00"]
    stale = customer.post(f"/api/v1/contracts/{contract['id']}/sign",
                          json={"token": link["token"], "name": "张伟"})
    assert stale.status_code == 403 and stale.json()["kind"] == "replaced"
    link = http.post(f"/api/v1/contracts/{contract['id']}/send").json()
    assert customer.post(f"/api/v1/contracts/{contract['id']}/sign",
                         json={"token": link["token"], "name": "张伟"}).status_code == 200
    assert http.put(path, json={"milestones": three}).status_code == 409


def test_delivery_acceptance_makes_the_last_milestone_fall_due_once(accepted, rabbit_config):
    import datetime as dt

    from kit.events import new_event

    quotes, http, customer, contract, _, _, deal_id = accepted()
    link = http.post(f"/api/v1/contracts/{contract['id']}/send").json()
    customer.post(f"/api/v1/contracts/{contract['id']}/sign",
                  json={"token": link["token"], "name": "张伟"})
    at = dt.datetime(2026, 2, 1, 8, 0, tzinfo=dt.UTC)
    event = new_event("delivery.accepted", "dl-1", {"delivery_id": "dl-1", "deal_id": deal_id,
                                                    "accepted_at": at}, 5)
    publish(rabbit_config["AMQP_URI"], event, event)

    def delivery_due():
        got = http.get(f"/api/v1/contracts/{contract['id']}").json()
        return got["milestones"][1]["due_at"] and got
    got = wait_for(delivery_due)
    assert got["milestones"][1]["due_at"] == "2026-03-03T08:00:00.000Z"  # 30 days after
    assert got["milestones"][0]["due_at"] is not None  # the signing one, from the signature


HALVES = [{"key": "a", "label": "A", "percent": "50", "trigger": "signed"},
          {"key": "b", "label": "B", "percent": "50", "trigger": "signed"}]


@pytest.mark.parametrize("milestones", [
    [HALVES[0], {**HALVES[1], "key": "a"}],
    [HALVES[0], {**HALVES[0], "percent": "25"}, {**HALVES[1], "percent": "25"}],
])
def test_a_schedule_with_a_key_twice_is_400_and_changes_nothing(accepted, milestones):
    _, http, _, contract, _, _, _ = accepted()
    path = f"/api/v1/contracts/{contract['id']}/schedule"
    resp = http.put(path, json={"milestones": milestones})
    assert resp.status_code == 400, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    [message] = resp.json()["errors"]["milestones"]
    assert "a is given more than once" in message
    assert http.get(f"/api/v1/contracts/{contract['id']}").json() == contract


def test_a_new_schedule_moves_the_etag_and_a_stale_if_match_is_409(accepted):
    _, http, _, contract, _, _, _ = accepted()
    path = f"/api/v1/contracts/{contract['id']}/schedule"
    read = http.get(f"/api/v1/contracts/{contract['id']}")
    tag = read.headers["ETag"]
    assert tag == f'"{read.json()["etag"]}"'
    first = http.put(path, json={"milestones": HALVES}, headers={"If-Match": tag})
    assert first.status_code == 200, first.text
    assert first.headers["ETag"] != tag
    for _ in range(2):
        again = http.put(path, json={"milestones": HALVES}, headers={"If-Match": tag})
        assert again.status_code == 409 and "changed meanwhile" in again.json()["detail"]
    second = http.put(path, json={"milestones": HALVES[::-1]},
                      headers={"If-Match": first.headers["ETag"]})
    assert second.status_code == 200, second.text
    assert [m["key"] for m in second.json()["milestones"]] == ["b", "a"]


def test_the_contract_pdf_names_the_seller_in_the_document_s_locale(accepted):
    # the seller is the COMPANY config, its name {en: ..., zh-CN: ...}; documents in zh-CN
    _, http, _, contract, _, config, _ = accepted()
    assert config["COMPANY"]["name"] == {"en": "Dealflow Demo Ltd.", "zh-CN": "德飞演示有限公司"}
    resp = http.get(f"/api/v1/contracts/{contract['id']}/pdf")
    assert resp.status_code == 200
    text = pdf_text(resp.content)
    assert "Dealflow Demo Ltd." not in text and "{'en'" not in text
    # in the parties' block too, not only in the page header
    parties = text[text.index("卖方"):text.index("合同金额")]
    assert "德飞演示有限公司" in parties, parties
