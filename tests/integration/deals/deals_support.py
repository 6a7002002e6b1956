"""Helpers shared by the deals integration tests."""
import datetime as dt
from decimal import Decimal

from kombu import Connection

from deals.service import DealsService
from kit.events import new_event
from tests.support.amqp import publish  # noqa: F401 - shared with the deals tests
from tests.support.wait import wait_for  # noqa: F401 - shared with the deals tests


def start_deals(container_factory, config):
    container = container_factory(DealsService, config)
    container.start()
    return container


def store_of(container):
    return next(d for d in container.dependencies if d.attr_name == "store").store


def lead_converted(lead_id, **data):
    now = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.UTC)
    if "amount" in data:
        data["amount"] = Decimal(data["amount"])
    return new_event("lead.converted", lead_id, {
        "lead_id": lead_id, "name": "Ann Lee", "company": f"Co {lead_id}",
        "email": "ann@example.test", "source": "web_form", "owner_id": "rep-1",
        "created_at": now, "converted_at": now, **data}, 4)


def quote_accepted(deal_id, total="950.00", currency="EUR", quote_id="q-1", version=1):
    return new_event("quote.accepted", quote_id, {
        "quote_id": quote_id, "deal_id": deal_id, "version": version, "total": Decimal(total),
        "currency": currency, "accepted_at": dt.datetime(2025, 3, 2, 10, 0, tzinfo=dt.UTC)}, 5)


def contract_signed(deal_id, total="950.00", currency="EUR", quote_id="q-1",
                    contract_id="c-1"):
    return new_event("contract.signed", contract_id, {
        "contract_id": contract_id, "quote_id": quote_id, "deal_id": deal_id,
        "amount": Decimal(total), "currency": currency, "pdf_sha256": "0" * 64,
        "signed_at": dt.datetime(2025, 3, 3, 10, 0, tzinfo=dt.UTC)}, 2)


def queue_bound(amqp_uri, queue):
    """True once the service has declared its consumer queue (it then receives events)."""
    with Connection(amqp_uri) as conn:
        try:
            conn.default_channel.queue_declare(queue, passive=True)
            return True
        except Exception:  # noqa: BLE001 - NotFound closes the channel; not there yet
            return False


class Client:
    """HTTP calls that carry the deal's ETag along, as a careful client does."""

    def __init__(self, api):
        self.api = api

    def create(self, **body):
        body.setdefault("name", "Acme")
        resp = self.api.post("/api/v1/deals", json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def act(self, deal, action, body=None, method="post"):
        path = f"/api/v1/deals/{deal['id']}" + (f"/{action}" if action else "")
        resp = getattr(self.api, method)(path, json=body or {},
                                         headers={"If-Match": f'"{deal["version"]}"'})
        return resp

    def must(self, deal, action, body=None, method="post"):
        resp = self.act(deal, action, body, method)
        assert resp.status_code == 200, resp.text
        return resp.json()
