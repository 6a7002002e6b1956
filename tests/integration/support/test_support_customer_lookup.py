"""What notify asks the support service when a ticket is resolved (events carry no personal
data and no links): the ticket's contact, for integrations and admins only, a 404 without
an e-mail address; and the CSAT link, whose answer has the `url` notify mails."""
import pytest

from kit.contacts import contact_id
from tests.integration.support.support_helpers import (
    move,
    open_ticket,
    start_support,
    support_config,
)
from tests.support.amqp import Subscriber
from tests.support.tokens import bearer

INTEGRATION = bearer("integration", sub="system:notify")
CONTACT = {"name": "王芳", "email": "wang.fang@example.cn", "phone": "+8613800000001",
           "locale": "zh-CN", "time_zone": "Asia/Shanghai"}


@pytest.fixture
def support(container_factory, make_config, api):
    config = support_config(make_config)
    start_support(container_factory, config)
    return api(config), api(config, auth={})


def test_the_ticket_contact_and_rating_link_are_read_by_integrations(support, rabbit_config):
    http, anonymous = support
    events = Subscriber(rabbit_config["AMQP_URI"], "support", "#", name="ticket-contact")
    ticket = open_ticket(http, contact=CONTACT)
    url = f"/api/v1/tickets/{ticket['id']}/customer"

    resp = http.get(url, headers=INTEGRATION)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"id": contact_id("wang.fang@example.cn"), **CONTACT}
    assert http.get(url).status_code == 200  # an admin
    assert http.get(url, headers=bearer("support_agent", sub="ann")).status_code == 403
    assert anonymous.get(url).status_code == 401
    assert http.get("/api/v1/tickets/nope/customer", headers=INTEGRATION).status_code == 404

    assert move(http, ticket, "resolved").status_code == 200
    link = http.get(f"/api/v1/tickets/{ticket['id']}/rating-link", headers=INTEGRATION)
    assert link.status_code == 200, link.text
    assert f"/api/v1/tickets/{ticket['id']}/rating?token=" in link.json()["url"]

    published = events.drain(timeout=3)
    events.close()
    assert "ticket.resolved" in [e["type"] for e in published]
    assert not [e for e in published if "example.cn" in str(e) or "王芳" in str(e)]


@pytest.mark.parametrize("contact", [None, {"name": "王芳"}, {"name": "王芳", "email": None,
                                                             "phone": "+8613800000001"}])
def test_a_ticket_without_a_contact_email_has_no_contact(support, contact):
    http, _ = support
    ticket = open_ticket(http, contact=contact)
    resp = http.get(f"/api/v1/tickets/{ticket['id']}/customer", headers=INTEGRATION)
    assert resp.status_code == 404
    assert "e-mail" in resp.json()["detail"]


def test_a_contact_without_a_name_is_greeted_by_the_account(support):
    http, _ = support
    ticket = open_ticket(http, account="上海云杉科技有限公司",
                         contact={"email": "help@example.cn"})
    resp = http.get(f"/api/v1/tickets/{ticket['id']}/customer", headers=INTEGRATION)
    assert resp.json()["name"] == "上海云杉科技有限公司"
    assert resp.json()["locale"] is None  # notify's default applies
