"""A deal from discovery to Won through the HTTP APIs alone, across processes: deals opens
it; quotes prices it from the price book, a manager approves the discount, the customer
accepts through the signed link (no login); deals records the accepted quote; the contract
the quote became is signed through its link (the PDF's hash kept); finance records the
first payment; the signed contract opens Won."""
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.sales import poll
from tests.support.tokens import bearer

CUSTOMER = {"Authorization": None}  # the customer's calls carry no token at all


def call(method, url, expect=200, **kwargs):
    resp = requests.request(method, url, timeout=15, **kwargs)
    assert resp.status_code == expect, f"{method} {url}: {resp.status_code} {resp.text}"
    return resp


def test_a_deal_is_won_through_quote_approval_acceptance_signature_and_payment(
        quotes_platform):
    platform = quotes_platform
    deals, quotes = platform.urls["deals"], platform.urls["quotes"]
    ann, mia, fay = bearer("rep", sub="ann"), bearer("manager", sub="mia"), \
        bearer("finance", sub="fay")

    deal = call("post", f"{deals}/api/v1/deals", 201, json={
        "name": "上海云杉科技有限公司", "owner_id": "ann", "amount": "20000.00",
        "currency": "CNY"}).json()
    assert deal["stage"] == "discovery"

    def act(deal, action="", body=None, method="post", expect=200):
        path = f"{deals}/api/v1/deals/{deal['id']}" + (f"/{action}" if action else "")
        return call(method, path, expect, json=body or {},
                    headers={"If-Match": f'"{deal["version"]}"'}).json()

    deal = act(deal, "", {"checklist": {"discovery_call_held": True},
                          "needs_summary": "200 seats, on premises"}, method="patch")
    for stage in ("needs_confirmed", "proposal", "quote_negotiation"):
        deal = act(deal, "stage", {"stage": stage})

    call("post", f"{quotes}/api/v1/products", 201, json={
        "code": "CLOUD-ENT", "name_zh": "云服务企业版", "name_en": "Cloud enterprise",
        "unit": "套", "prices": {"CNY": "100.00"}, "tax_rate": 6})
    body = {"deal_id": deal["id"], "currency": "CNY", "discount_percent": "12",
            "valid_until": "2099-12-31T23:59:59+08:00",
            "lines": [{"product_code": "CLOUD-ENT", "quantity": "200"}]}
    # quotes learns of the deal from deal.created: until then, 409 unknown_deal
    created = poll(lambda: (r := requests.post(f"{quotes}/api/v1/quotes", json=body,
                                               headers=ann, timeout=10)).status_code == 201
                   and r)
    assert created, "the quotes service never learnt of the deal"
    quote = created.json()
    assert quote["totals"]["total"] == "18656.00"  # 20000 - 12 % = 17600, + 6 % tax

    submitted = call("post", f"{quotes}/api/v1/quotes/{quote['id']}/submit",
                     headers=ann).json()
    assert [t["key"] for t in submitted["approvals_required"]] == ["manager"]
    call("post", f"{quotes}/api/v1/quotes/{quote['id']}/approve", 403, json={}, headers=ann)
    call("post", f"{quotes}/api/v1/quotes/{quote['id']}/approve", json={
        "reason": "volume"}, headers=mia)
    link = call("post", f"{quotes}/api/v1/quotes/{quote['id']}/send",
                headers=ann).json()["link"]
    call("get", f"{quotes}/api/v1/public/quotes", params={"token": link["token"]},
         headers=CUSTOMER)
    call("post", f"{quotes}/api/v1/quotes/{quote['id']}/accept", headers=CUSTOMER,
         json={"token": link["token"], "name": "张伟"})

    deal = poll(lambda: (d := call("get", f"{deals}/api/v1/deals/{deal['id']}").json())[
        "accepted_quote"] and d)
    assert deal, "deals never heard of the accepted quote"
    assert (deal["amount"], deal["accepted_quote"]["quote_id"]) == ("18656.00", quote["id"])
    deal = act(deal, "stage", {"stage": "contract_payment"})
    refused = act(deal, "won", expect=409)
    assert refused["missing_fields"] == ["contract_signed"]

    contract = poll(lambda: call("get", f"{quotes}/api/v1/contracts",
                                 params={"deal_id": deal["id"]}).json()["items"])
    assert contract, "the accepted quote never became a contract"
    contract = contract[0]
    signing = call("post", f"{quotes}/api/v1/contracts/{contract['id']}/send",
                   headers=ann).json()
    pdf = call("get", f"{quotes}/api/v1/public/contracts/pdf",
               params={"token": signing["token"]}, headers=CUSTOMER)
    assert pdf.headers["Content-Type"] == "application/pdf"
    signed = call("post", f"{quotes}/api/v1/contracts/{contract['id']}/sign",
                  headers=CUSTOMER, json={"token": signing["token"], "name": "张伟"}).json()
    assert signed["status"] == "executed"

    first = contract["milestones"][0]["amount"]
    assert first == "5596.80"  # 30 % on signing
    call("post", f"{quotes}/api/v1/contracts/{contract['id']}/payments", 201,
         headers={**fay, "Idempotency-Key": "ICBC-2026-0001"},
         json={"amount": first, "method": "bank_transfer", "reference": "ICBC-2026-0001",
               "received_at": "2026-01-15T10:00:00+08:00"})

    deal = poll(lambda: (d := call("get", f"{deals}/api/v1/deals/{deal['id']}").json())[
        "contract_signed"] and d["first_payment"] and d)
    assert deal, "deals never heard of the signature and the payment"
    assert deal["first_payment"]["amount"] == "5596.80"
    won = act(deal, "won")
    assert (won["status"], won["amount"], won["currency"]) == ("won", "18656.00", "CNY")

    # the KPIs, exact
    want = {
        ("dealflow_quotes_current", (("status", "accepted"),)): 1.0,
        ("dealflow_quotes_total", (("status", "approved"),)): 1.0,
        ("dealflow_quotes_total", (("status", "accepted"),)): 1.0,
        ("dealflow_quote_discount_percent_sum", ()): 12.0,
        ("dealflow_quote_discount_quotes", ()): 1.0,
        ("dealflow_quote_approval_seconds_count", ()): 1.0,
        ("dealflow_contracts_current", (("status", "signed"),)): 1.0,
        ("dealflow_contracted_amount", (("currency", "CNY"),)): 18656.0,
        ("dealflow_collected_amount", (("currency", "CNY"),)): 5596.8,
        ("dealflow_deals_closed", (("outcome", "won"),)): 1.0,
    }

    def kpis():
        text = requests.get(platform.urls["metrics"] + "/metrics", timeout=5).text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}
    def exact():
        got = kpis()
        return got if all(got.get(k) == v for k, v in want.items()) else None
    got = poll(exact) or kpis()
    assert {k: got.get(k) for k in want} == want
