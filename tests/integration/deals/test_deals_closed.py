"""Closed is closed, and the lead's conversion reaching a deal opened before it: through the
real HTTP API and the real lead.converted / quote.accepted handlers."""
from tests.integration.deals.deals_support import (
    Client,
    contract_signed,
    lead_converted,
    publish,
    quote_accepted,
    start_deals,
    wait_for,
)
from tests.support.amqp import Subscriber


def _read(http, deal_id):
    return http.get(f"/api/v1/deals/{deal_id}").json()


def test_won_from_discovery_needs_every_skipped_gate(container_factory, make_config, api):
    """Regression: /won closed a discovery deal whose move to contract_payment was 409."""
    config = make_config("deals")
    start_deals(container_factory, config)
    client = Client(api(config))
    deal = client.create(amount="128000.00", currency="EUR")
    moving = client.act(deal, "stage", {"stage": "contract_payment"})
    winning = client.act(deal, "won")
    assert moving.status_code == winning.status_code == 409
    assert winning.json()["missing_checklist"] == moving.json()["missing_checklist"]
    # every skipped stage's gate, then won's own (a signed contract)
    assert winning.json()["missing_fields"] == [*moving.json()["missing_fields"],
                                                "contract_signed"]
    assert moving.json()["missing_fields"] == ["needs_summary", "accepted_quote"]
    assert _read(client.api, deal["id"])["status"] == "open"


def test_a_won_deal_changes_only_through_reopen_and_edits_are_in_its_history(
        container_factory, make_config, api, rabbit_config):
    """Regression: a won deal's amount could be PATCHed from 128000.00 to 1.00, unrecorded."""
    config = make_config("deals")
    start_deals(container_factory, config)
    http = api(config)
    client = Client(http)
    deal = client.create(amount="128000.00", currency="EUR", needs_summary="SSO",
                         checklist=["discovery_call_held"], stage="quote_negotiation")
    publish(rabbit_config["AMQP_URI"], quote_accepted(deal["id"], total="128000.00"),
            contract_signed(deal["id"], total="128000.00"))
    # (two queues: the events may apply in either order)
    deal = wait_for(lambda: (d := _read(http, deal["id"]))["contract_signed"] and
                    d["accepted_quote"] and d)
    deal = client.must(deal, "won")

    for patch in ({"amount": "1.00"}, {"currency": "USD"}, {"owner_id": "rep-9"},
                  {"name": "renamed"}):
        resp = client.act(deal, "", patch, method="patch")
        assert resp.status_code == 409, resp.text
        assert "reopen" in resp.json()["detail"]
        assert resp.headers["Content-Type"] == "application/problem+json"
    unchanged = _read(http, deal["id"])
    assert (unchanged["amount"], unchanged["version"]) == ("128000.00", deal["version"])

    deal = client.must(deal, "reopen")
    deal = client.must(deal, "", {"amount": "120000.00", "owner_id": "rep-2"}, method="patch")
    edit = deal["history"][-1]
    assert edit["changes"] == {"amount": {"from": "128000.00", "to": "120000.00"},
                               "owner_id": {"from": None, "to": "rep-2"}}
    assert "by" in edit and edit["at"]
    assert [h.get("to") for h in deal["history"]][-3:] == ["won", "quote_negotiation", None]


def test_lead_converted_applies_its_amount_to_the_deal_opened_before_it(
        container_factory, make_config, api, rabbit_config):
    """Regression: converting a lead with an amount left an existing deal for that lead at
    its old amount, silently."""
    config = make_config("deals")
    sub = Subscriber(rabbit_config["AMQP_URI"], "deals", "deal.updated")
    start_deals(container_factory, config)
    http = api(config)
    client = Client(http)
    empty = client.create(name="no amount yet", lead_id="lead-a")
    priced = client.create(name="priced", lead_id="lead-b", amount="900.00", currency="EUR")
    assert (empty["origin"], priced["origin"]) == ("direct", "direct")

    first = lead_converted("lead-a", amount="5000.00", currency="EUR")
    second = lead_converted("lead-b", amount="7000.00", currency="USD")
    publish(rabbit_config["AMQP_URI"], first, second, first)  # and a redelivery

    adopted = wait_for(lambda: (d := _read(http, empty["id"]))["origin"] == "lead" and d)
    assert (adopted["amount"], adopted["currency"]) == ("5000.00", "EUR")
    assert adopted["history"][-1]["changes"]["amount"] == {"from": None, "to": "5000.00"}
    kept = wait_for(lambda: (d := _read(http, priced["id"]))["origin"] == "lead" and d)
    assert (kept["amount"], kept["currency"]) == ("900.00", "EUR")
    assert kept["history"][-1]["not_applied"] == {"amount": "7000.00", "currency": "USD"}

    updates = sub.drain(expect=2, timeout=10) + sub.drain(timeout=1)
    assert sorted((e["subject"], tuple(e["data"]["changed"])) for e in updates) == sorted([
        (empty["id"], ("origin", "amount", "currency")), (priced["id"], ("origin",))])
    assert all(e["data"]["origin"] == "lead" for e in updates)
    sub.close()
