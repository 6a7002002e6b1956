"""The public deal event stream, seen as an outside system sees it.

A plain AMQP client (pika; no nameko, no kit) binds its own durable queue to the
`deals.events` exchange, goes away while a scripted flow of deals runs, comes back and
reads every event: each one a schema-valid CloudEvent, and per deal the sequences 1..n
without a gap, n being the deal's version (its ETag).
"""
import json
import time

import eventlet
import pika
from kombu import Connection

from kit.events import parse_event
from tests.integration.deals.deals_support import (
    Client,
    contract_signed,
    lead_converted,
    publish,
    quote_accepted,
    start_deals,
    wait_for,
)

QUEUE = "crm-sync.deal-events"


def pika_params(amqp_uri):
    conn = Connection(amqp_uri)
    return pika.ConnectionParameters(
        host=conn.hostname, port=conn.port or 5672, virtual_host=conn.virtual_host,
        credentials=pika.PlainCredentials(conn.userid, conn.password))


def bind_durable_queue(params):
    """What the integrator does once: its own durable queue, bound to every deal event."""
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.exchange_declare("deals.events", exchange_type="topic", durable=True)
    channel.queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "classic"})
    channel.queue_bind(QUEUE, "deals.events", routing_key="#")
    connection.close()


def read_all(params, expect, timeout=15.0):
    """Consume with manual acks until `expect` messages arrived (then a short quiet spell
    to catch any surplus)."""
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    got = []
    deadline = time.monotonic() + timeout
    quiet_until = None
    while time.monotonic() < deadline:
        method, props, body = channel.basic_get(QUEUE, auto_ack=False)
        if method is None:
            if len(got) >= expect:
                quiet_until = quiet_until or time.monotonic() + 0.5
                if time.monotonic() > quiet_until:
                    break
            eventlet.sleep(0.05)
            continue
        got.append((method, props, body))
        channel.basic_ack(method.delivery_tag)
    connection.close()
    return got


def test_outside_subscriber_receives_every_deal_event_without_gaps(
        container_factory, make_config, api, rabbit_config):
    params = pika_params(rabbit_config["AMQP_URI"])
    bind_durable_queue(params)  # and then the subscriber is offline during the flow

    config = make_config("deals")
    start_deals(container_factory, config)
    http = api(config)
    client = Client(http)

    # 1. a deal through every stage to won, with a quote accepted on the way
    won = client.create(name="Won Co", amount="1000.00", currency="EUR", owner_id="rep-1",
                        expected_close="2025-06-30")
    won = client.must(won, "", {"checklist": {"discovery_call_held": True},
                                "needs_summary": "50 seats"}, method="patch")
    for stage in ("needs_confirmed", "proposal", "quote_negotiation"):
        won = client.must(won, "stage", {"stage": stage})
    assert client.act(won, "stage", {"stage": "contract_payment"}).status_code == 409
    publish(rabbit_config["AMQP_URI"], quote_accepted(won["id"], total="990.00"),
            contract_signed(won["id"], total="990.00"))
    won = wait_for(lambda: (lambda d: d if d["contract_signed"] and d["accepted_quote"]
                            else None)(
        http.get(f"/api/v1/deals/{won['id']}").json()))
    won = client.must(won, "stage", {"stage": "contract_payment"})
    won = client.must(won, "won")

    # 2. a deal lost, reopened, edited and lost again
    lost = client.create(name="Lost Co", amount="200", currency="USD")
    lost = client.must(lost, "lost", {"reason": "went with a competitor"})
    lost = client.must(lost, "reopen")
    lost = client.must(lost, "", {"amount": "150", "custom": {"competitor": "X"}},
                       method="patch")
    lost = client.must(lost, "lost", {"reason": "price"})

    # 3. a deal opened by a converted lead (delivered twice), then worked on
    event = lead_converted("lead-42", amount="5000", currency="EUR")
    publish(rabbit_config["AMQP_URI"], event, event)
    [from_lead] = wait_for(lambda: http.get(
        "/api/v1/deals", params={"lead_id": "lead-42"}).json()["items"])
    from_lead = client.must(from_lead, "", {"checklist": {"discovery_call_held": True}},
                            method="patch")
    from_lead = client.must(from_lead, "stage", {"stage": "needs_confirmed"})

    # 4. a few quick ones, some with a lost race on the way
    quick = [client.create(name=f"Q{i}", amount="10", currency="EUR") for i in range(5)]
    for deal in quick:
        client.must(deal, "", {"name": deal["name"] + "!"}, method="patch")
        assert client.act(deal, "", {"name": "stale"}, method="patch").status_code == 409

    finals = {d["id"]: http.get(f"/api/v1/deals/{d['id']}").json()["version"]
              for d in (won, lost, from_lead, *quick)}
    assert finals[won["id"]] == 10 and finals[lost["id"]] == 7
    expected = sum(finals.values())

    messages = read_all(params, expected)
    assert len(messages) >= expected

    by_deal = {}
    for method, props, body in messages:
        assert props.content_type == "application/cloudevents+json" and props.delivery_mode == 2
        envelope, data = parse_event(json.loads(body))  # schema-valid, or it raises
        assert method.exchange == "deals.events" and method.routing_key == envelope["type"]
        assert envelope["source"] == "/dealflow/deals" and data["deal_id"] == envelope["subject"]
        seen = by_deal.setdefault(envelope["subject"], {})
        # at-least-once: a repeat is the same event (same id), never a different one
        assert seen.setdefault(envelope["sequence"], envelope["id"]) == envelope["id"]

    assert set(by_deal) == set(finals)
    for deal_id, version in finals.items():
        assert sorted(by_deal[deal_id]) == list(range(1, version + 1)), deal_id
