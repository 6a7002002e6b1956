"""What notify asks the quotes service (events carry no personal data and no links): the
customer's contact of a quote and of its contract, for integrations and admins only, a 404
where no e-mail address is known; the contract's signing link, open from its creation and
read without changing anything."""
import pytest

from kit.contacts import contact_id
from tests.integration.quotes.quotes_support import (
    known_deal,
    new_deal_id,
    quotes_with_a_product,
    token,
    wait_for,
)
from tests.support.amqp import Subscriber

CUSTOMER = {"name": "上海云杉科技有限公司", "contact": "张伟", "email": "Zhang.Wei@example.cn",
            "phone": "+86 138 0000 0001", "locale": "zh-CN", "time_zone": "Asia/Shanghai"}
INTEGRATION = token("system:notify", "integration")


@pytest.fixture
def quotes(container_factory, make_config, api, rabbit_config, mongo_db):
    quotes, config, _ = quotes_with_a_product(container_factory, make_config, api)

    def sent(**body):
        deal_id = new_deal_id()
        known_deal(mongo_db, rabbit_config["AMQP_URI"], deal_id)
        quote = quotes.must_create(deal_id, **body)
        quotes.must(quote["id"], "submit")
        return quotes.must(quote["id"], "send")
    quotes.sent = sent
    quotes.anonymous = api(config, auth={})
    return quotes


def test_the_quote_customer_is_read_by_integrations(quotes, rabbit_config):
    events = Subscriber(rabbit_config["AMQP_URI"], "quotes", "#", name="customer-lookup")
    sent = quotes.sent(customer=CUSTOMER)
    quote_id = sent["quote"]["id"]
    url = f"/api/v1/quotes/{quote_id}/customer"

    resp = quotes.http.get(url, headers=INTEGRATION)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"id": contact_id("zhang.wei@example.cn"), "name": "张伟",
                           "email": "Zhang.Wei@example.cn", "phone": "+86 138 0000 0001",
                           "locale": "zh-CN", "time_zone": "Asia/Shanghai"}
    assert quotes.http.get(url, headers=token("admin-1", "admin")).status_code == 200
    # the rep who owns the quote reads the customer on the quote itself, not here
    assert quotes.http.get(url, headers=quotes.headers).status_code == 403
    assert quotes.anonymous.get(url).status_code == 401
    assert quotes.http.get("/api/v1/quotes/nope/customer",
                           headers=INTEGRATION).status_code == 404

    link = quotes.http.get(f"/api/v1/quotes/{quote_id}/link", headers=INTEGRATION)
    assert link.status_code == 200 and link.json()["url"] == sent["link"]["url"]

    published = events.drain(timeout=3)
    events.close()
    assert "quote.sent" in [e["type"] for e in published]
    # no personal data and no link in any event the quote caused (DESIGN)
    assert not [e for e in published if "example.cn" in str(e) or "张伟" in str(e)
                or "token" in str(e["data"])]


@pytest.mark.parametrize("customer", [
    None, {"name": "上海云杉科技有限公司", "contact": "张伟"},
    {"name": "上海云杉科技有限公司", "email": None, "phone": "+8613800000001"}])
def test_a_quote_without_a_customer_email_has_no_contact(quotes, customer):
    sent = quotes.sent(**({"customer": customer} if customer else {}))
    resp = quotes.http.get(f"/api/v1/quotes/{sent['quote']['id']}/customer",
                           headers=INTEGRATION)
    assert resp.status_code == 404
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert "e-mail" in resp.json()["detail"]


def test_a_contract_opens_for_signing_with_its_quote_customer(quotes, api):
    sent = quotes.sent(customer=CUSTOMER)
    customer = api(quotes.config, auth={})
    accepted = customer.post(f"/api/v1/quotes/{sent['quote']['id']}/accept",
                             json={"token": sent["link"]["token"], "name": "张伟"})
    assert accepted.status_code == 200, accepted.text
    deal_id = sent["quote"]["deal_id"]
    contract = wait_for(lambda: (quotes.http.get("/api/v1/contracts", params={
        "deal_id": deal_id}).json()["items"] or [None])[0])
    assert contract, "no contract"

    who = quotes.http.get(f"/api/v1/contracts/{contract['id']}/customer", headers=INTEGRATION)
    assert who.status_code == 200 and who.json()["email"] == "Zhang.Wei@example.cn"
    assert quotes.http.get(f"/api/v1/contracts/{contract['id']}/customer",
                           headers=quotes.headers).status_code == 403

    # open for signing from its creation; reading the link twice changes nothing
    url = f"/api/v1/contracts/{contract['id']}/link"
    first = quotes.http.get(url, headers=INTEGRATION)
    assert first.status_code == 200, first.text
    again = quotes.http.get(url, headers=INTEGRATION).json()
    assert again["url"] == first.json()["url"] and "token=" in again["url"]
    after = quotes.http.get(f"/api/v1/contracts/{contract['id']}").json()
    assert (after["etag"], after["updated_at"]) == (contract["etag"], contract["updated_at"])
    view = customer.get("/api/v1/public/contracts", params={"token": again["token"]})
    assert view.status_code == 200 and view.json()["number"] == contract["number"]

    # a new link replaces it (and is the one read from then on)
    resent = quotes.http.post(f"/api/v1/contracts/{contract['id']}/send").json()
    assert quotes.http.get(url, headers=INTEGRATION).json()["url"] == resent["url"]
    signed = customer.post(f"/api/v1/contracts/{contract['id']}/sign",
                           json={"token": resent["token"], "name": "张伟"})
    assert signed.status_code == 200, signed.text
    gone = quotes.http.get(url, headers=INTEGRATION)
    assert gone.status_code == 409 and "executed" in gone.json()["detail"]
