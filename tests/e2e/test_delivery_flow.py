"""A deal won through the deals API opens its delivery project in support (deals and
support as separate processes, real RabbitMQ and FerretDB); completing the checklist
announces delivery.accepted, which the quotes service's "on delivery acceptance" milestone
listens to."""
import pytest
import requests

from tests.e2e.sales import deal_action, meet_every_gate, poll
from tests.support.amqp import Subscriber
from tests.support.platform import Platform


@pytest.fixture
def delivery_platform(rabbit_config):
    running = Platform(rabbit_config["AMQP_URI"], services=("deals", "support")).start()
    yield running
    running.stop()
    running.drop_databases()


def test_a_won_deal_is_delivered_and_accepted(delivery_platform, rabbit_config):
    deals, support = delivery_platform.urls["deals"], delivery_platform.urls["support"]
    sub = Subscriber(rabbit_config["AMQP_URI"], "support", "delivery.accepted")
    created = requests.post(f"{deals}/api/v1/deals", timeout=10, json={
        "name": "Acme rollout", "amount": "12000.00", "currency": "CNY",
        "account": "Acme", "checklist": ["discovery_call_held"]})
    assert created.status_code == 201, created.text
    deal = meet_every_gate(deals, delivery_platform.amqp_uri, created.json())
    deal = deal_action(deals, deal, "won")
    assert deal["status"] == "won"

    def project():
        items = requests.get(f"{support}/api/v1/deliveries", params={"deal_id": deal["id"]},
                             timeout=5).json()["items"]
        return items[0] if items else None

    opened = poll(project)
    assert opened, "support opened no delivery project for the won deal"
    assert (opened["status"], opened["account"]) == ("open", "Acme")
    for step in opened["steps"]:
        resp = requests.post(f"{support}/api/v1/deliveries/{opened['id']}/steps/"
                             f"{step['key']}/complete", timeout=10)
        assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "accepted"
    [accepted] = sub.drain(expect=1, timeout=15)
    assert accepted["data"]["deal_id"] == deal["id"]
    sub.close()
