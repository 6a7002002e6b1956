"""Events from other services: lead.converted opens one deal (however often it arrives),
quote.accepted records the quote on its deal and opens the Contract & payment gate."""
from decimal import Decimal

from tests.integration.deals.deals_support import (
    Client,
    lead_converted,
    publish,
    quote_accepted,
    start_deals,
    wait_for,
)
from tests.support.amqp import Subscriber


def deals_for(http, lead_id):
    return http.get("/api/v1/deals", params={"lead_id": lead_id}).json()["items"]


def test_lead_converted_opens_one_deal_even_when_redelivered(
        container_factory, make_config, api, rabbit_config, mongo_db):
    config = make_config("deals")
    sub = Subscriber(rabbit_config["AMQP_URI"], "deals", "deal.created")
    start_deals(container_factory, config)
    http = api(config)
    event = lead_converted("lead-1", amount="2500.00", currency="EUR")

    publish(rabbit_config["AMQP_URI"], event)
    [deal] = wait_for(lambda: deals_for(http, "lead-1"))
    assert (deal["name"], deal["account"], deal["owner_id"]) == ("Co lead-1", "Co lead-1",
                                                                 "rep-1")
    assert (deal["pipeline_id"], deal["stage"], deal["amount"], deal["currency"]) == \
        ("default", "discovery", "2500.00", "EUR")
    assert deal["contact"] == {"name": "Ann Lee", "email": "ann@example.test"}

    publish(rabbit_config["AMQP_URI"], event, event)  # redelivered twice more
    publish(rabbit_config["AMQP_URI"], lead_converted("lead-2"))
    assert wait_for(lambda: len(deals_for(http, "lead-2")) == 1)
    assert len(deals_for(http, "lead-1")) == 1
    assert mongo_db.deals.count_documents({}) == 2

    created = sub.drain(expect=2, timeout=10) + sub.drain(timeout=1)
    assert sorted(e["data"]["lead_id"] for e in created) == ["lead-1", "lead-2"]
    assert {e["correlationid"] for e in created if e["data"]["lead_id"] == "lead-1"} == \
        {event["id"]}
    sub.close()


def test_lead_converted_handled_by_two_instances_opens_one_deal(
        container_factory, make_config, api, rabbit_config, mongo_db):
    first = make_config("deals")
    second = make_config("deals")
    start_deals(container_factory, first)
    start_deals(container_factory, second)
    events = [lead_converted(f"lead-{i}") for i in range(10)]
    publish(rabbit_config["AMQP_URI"], *events, *events, *events)
    assert wait_for(lambda: mongo_db.deals.count_documents({}) == 10)
    http = api(first)
    for i in range(10):
        assert len(deals_for(http, f"lead-{i}")) == 1


def test_quote_accepted_opens_the_contract_gate_once(container_factory, make_config, api,
                                                     rabbit_config):
    config = make_config("deals")
    sub = Subscriber(rabbit_config["AMQP_URI"], "deals", "deal.updated")
    start_deals(container_factory, config)
    http = api(config)
    client = Client(http)
    deal = client.create(amount="1000.00", currency="EUR", needs_summary="SSO",
                         checklist=["discovery_call_held"], stage="quote_negotiation")
    resp = client.act(deal, "stage", {"stage": "contract_payment"})
    assert resp.status_code == 409 and resp.json()["missing_fields"] == ["accepted_quote"]

    accepted = quote_accepted(deal["id"], total="980.00", quote_id="q-9", version=2)
    publish(rabbit_config["AMQP_URI"], accepted, accepted)  # and a redelivery

    def recorded():
        body = http.get(f"/api/v1/deals/{deal['id']}").json()
        return body if body["accepted_quote"] else None
    deal = wait_for(recorded)
    assert deal["accepted_quote"] == {"quote_id": "q-9", "version": 2, "total": "980.00",
                                      "currency": "EUR",
                                      "accepted_at": "2025-03-02T10:00:00.000Z"}
    assert deal["amount"] == "980.00" and deal["version"] == 2

    moved = client.must(deal, "stage", {"stage": "contract_payment"})
    assert moved["stage"] == "contract_payment" and moved["probability"] == 90

    [updated] = sub.drain(expect=1, timeout=10) + sub.drain(timeout=1)
    assert updated["dealflowsequence"] == 2 and updated["correlationid"] == accepted["id"]
    assert updated["data"]["changed"] == ["accepted_quote", "amount"]
    assert Decimal(updated["data"]["amount"]) == Decimal("980.00")
    sub.close()


def test_quote_accepted_for_an_unknown_deal_is_dead_lettered(container_factory, make_config,
                                                             rabbit_config):
    from kit.amqp import queue_depths

    config = make_config("deals", CONSUMER={"max_retries": 1})
    start_deals(container_factory, config)
    publish(rabbit_config["AMQP_URI"], quote_accepted("no-such-deal"))
    dlq = "evt-quotes-quote.accepted--deals.handle_quotes_quote_accepted.dlq"
    assert wait_for(lambda: queue_depths(rabbit_config["AMQP_URI"], [dlq])[dlq] == 1)


def test_contract_signed_and_a_first_payment_reach_the_deal_once(
        container_factory, make_config, api, rabbit_config):
    import datetime as dt

    from kit.events import new_event
    from tests.integration.deals.deals_support import contract_signed

    config = make_config("deals")
    start_deals(container_factory, config)
    http = api(config)
    client = Client(http)
    deal = client.create(amount="1000.00", currency="EUR", needs_summary="SSO",
                         checklist=["discovery_call_held"], stage="quote_negotiation")
    signed = contract_signed(deal["id"], total="1000.00")
    payment = new_event("payment.received", "c-1", {
        "contract_id": "c-1", "quote_id": "q-1", "deal_id": deal["id"],
        "amount": Decimal("1000.00"), "currency": "EUR", "payment_id": "p-1",
        "paid": Decimal("300.00"), "paid_total": Decimal("300.00"), "method": "bank",
        "received_at": dt.datetime(2025, 3, 4, tzinfo=dt.UTC), "first": True}, 3)
    publish(rabbit_config["AMQP_URI"], quote_accepted(deal["id"], total="1000.00"),
            signed, signed, payment, payment)

    def complete():
        body = http.get(f"/api/v1/deals/{deal['id']}").json()
        done = body["accepted_quote"] and body["contract_signed"] and body["first_payment"]
        return body if done else None
    deal = wait_for(complete)
    assert deal["contract_signed"] == {"contract_id": "c-1",
                                       "signed_at": "2025-03-03T10:00:00.000Z"}
    assert deal["first_payment"]["amount"] == "300.00"
    # (each event has a queue of its own: they may apply in any order)
    assert sorted(h.get("event") or "" for h in deal["history"][-3:]) == \
        ["contract.signed", "payment.received", "quote.accepted"]
    assert deal["version"] == 4  # one deal.updated each, redeliveries changed nothing
    won = client.must(client.must(deal, "stage", {"stage": "contract_payment"}), "won")
    assert won["status"] == "won"
