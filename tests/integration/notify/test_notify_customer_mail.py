"""Customers get their mails, with the real quotes and support services beside notify and
notify's own configuration (NOTIFY.customers and NOTIFY.links as shipped): a sent quote
reaches its customer with the link that accepts it, the contract it became with the link
that signs it (and a new link the rep sends, which replaces it), a resolved ticket with the
CSAT survey. The events carry neither address
nor link; notify asks the owners, with an integration token it signs itself (the tests'
identity provider key, as deploy/local gives it var/auth's)."""
import re
from urllib.parse import parse_qs, urlparse

import pytest

from tests.integration.notify.notify_support import notify_config, start_notify
from tests.integration.quotes.quotes_support import (
    Quotes,
    known_deal,
    new_deal_id,
    quotes_config,
    start_quotes,
)
from tests.integration.support.support_helpers import (
    move,
    open_ticket,
    start_support,
    support_config,
)
from tests.support import tokens
from tests.support.wait import wait_for

ZHANG = {"name": "上海云杉科技有限公司", "contact": "张伟", "email": "zhang.wei@example.cn",
         "locale": "zh-CN", "time_zone": "Asia/Shanghai"}


@pytest.fixture
def owners(container_factory, make_config, mongo_client, mongo_db_name):
    """quotes and support, each in a database of its own (named after the test's, so
    dropped with it once the query-plan check has explained their queries)."""
    databases = {name: f"{mongo_db_name}_{name}" for name in ("quotes", "support")}
    quotes = quotes_config(make_config, MONGO_DATABASE=databases["quotes"])
    support = support_config(make_config, MONGO_DATABASE=databases["support"])
    start_quotes(container_factory, quotes)
    start_support(container_factory, support)
    return {"quotes": quotes, "support": support,
            "quotes_db": mongo_client[databases["quotes"]]}


@pytest.fixture
def notify(container_factory, make_config, tmp_path, inbox, owners):
    def url(name):
        return f"http://{owners[name]['WEB_SERVER_ADDRESS']}"
    config = notify_config(make_config, tmp_path, inbox, NOTIFY={
        "services": {"quotes": url("quotes"), "support": url("support")},
        "lookup_signing_key_file": str(tokens.PRIVATE), "lookup_token_ttl_seconds": 60})
    start_notify(container_factory, config)
    return config


def text_of(inbox, address, subject):
    mails = wait_for(lambda: [m for m in inbox.to(address) if m["Subject"] == subject],
                     timeout=20)
    assert mails, f"no {subject!r} to {address}: {[m['Subject'] for m in inbox.messages()]}"
    [mail] = mails
    return mail, inbox.message(mail["ID"])["Text"].replace("\r\n", "\n")


def token_in(url):
    return parse_qs(urlparse(url).query)["token"][0]


def test_a_sent_quote_and_its_contract_reach_the_customer_with_their_links(
        owners, notify, api, inbox, rabbit_config):
    http = api(owners["quotes"])
    quotes = Quotes(http, owners["quotes"])
    quotes.product()
    deal_id = new_deal_id()
    known_deal(owners["quotes_db"], rabbit_config["AMQP_URI"], deal_id)
    quote = quotes.must_create(deal_id, customer=ZHANG)
    quotes.must(quote["id"], "submit")
    sent = quotes.must(quote["id"], "send")

    mail, text = text_of(inbox, "zhang.wei@example.cn", "您的报价单")
    assert mail["To"] == [{"Name": "张伟", "Address": "zhang.wei@example.cn"}]
    assert text.startswith("张伟，您好：\n您的报价（2120.00 CNY）")
    assert f"接受报价：{sent['link']['url']}" in text

    # the customer accepts through the mailed link; the contract comes to sign
    customer = api(owners["quotes"], auth={})
    accepted = customer.post(f"/api/v1/quotes/{quote['id']}/accept",
                             json={"token": token_in(sent["link"]["url"]), "name": "张伟"})
    assert accepted.status_code == 200, accepted.text
    _, text = text_of(inbox, "zhang.wei@example.cn", "请签署您的合同")
    [sign_url] = re.findall(r"签署合同：(\S+)", text)
    contract = http.get("/api/v1/contracts", params={"deal_id": deal_id}).json()["items"][0]
    # the rep sends a new link (the customer lost the mail): it replaces the first, so the
    # customer gets it by mail too (contract.sent)
    resent = http.post(f"/api/v1/contracts/{contract['id']}/send")
    assert resent.status_code == 200, resent.text
    _, text = text_of(inbox, "zhang.wei@example.cn", f"您的合同签署链接：{contract['number']}")
    [new_url] = re.findall(r"签署合同：(\S+)", text)
    assert token_in(new_url) == resent.json()["token"] != token_in(sign_url)
    replaced = customer.post(f"/api/v1/contracts/{contract['id']}/sign",
                             json={"token": token_in(sign_url), "name": "张伟"})
    assert replaced.status_code >= 400 and replaced.json()["kind"] == "replaced"
    signed = customer.post(f"/api/v1/contracts/{contract['id']}/sign",
                           json={"token": token_in(new_url), "name": "张伟"})
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "executed"


def test_a_resolved_ticket_reaches_its_contact_with_the_survey(owners, notify, api, inbox):
    http = api(owners["support"])
    ticket = open_ticket(http, contact={"name": "Alice Smith", "email": "alice@example.com",
                                        "locale": "en"})
    assert move(http, ticket, "resolved").status_code == 200

    mail, text = text_of(inbox, "alice@example.com", "Your ticket was resolved")
    assert text.startswith(f"Hello Alice Smith,\nyour ticket {ticket['id']} was resolved.")
    [survey] = re.findall(r"Rate our service: (\S+)", text)
    assert f"/api/v1/tickets/{ticket['id']}/rating?token=" in survey
    # the mail's link is followed with GET first: it opens the view, which rates nothing
    opened = api(owners["support"], auth={}).get(
        f"/api/v1/tickets/{ticket['id']}/rating", params={"token": token_in(survey)})
    assert opened.status_code == 200 and opened.json()["state"] == "ratable", opened.text
    rated = api(owners["support"], auth={}).post(
        f"/api/v1/tickets/{ticket['id']}/rating", params={"token": token_in(survey)},
        json={"score": 5, "comment": "thanks"})
    assert rated.status_code == 201, rated.text


def test_no_address_no_mail_and_nothing_else_held_up(owners, notify, api, inbox):
    """A ticket without an e-mail address: the owner answers 404, nobody is mailed, and the
    next ticket's customer is mailed as usual (the event was not retried forever)."""
    http = api(owners["support"])
    silent = open_ticket(http, contact={"name": "王芳", "phone": "+8613800000001"})
    assert move(http, silent, "resolved").status_code == 200
    ticket = open_ticket(http, contact={"name": "王芳", "email": "wang.fang@example.cn"})
    assert move(http, ticket, "resolved").status_code == 200
    _, text = text_of(inbox, "wang.fang@example.cn", "您的工单已解决")
    assert f"您的工单 {ticket['id']} 已解决" in text
    assert [m["To"][0]["Address"] for m in inbox.messages()] == ["wang.fang@example.cn"]
