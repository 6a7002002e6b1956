"""The event catalog and envelope: every event type of DESIGN.md, validated on the way out."""
import json
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from marshmallow import ValidationError

from kit import asyncapi
from kit.catalog import CATALOG, EVENT_TYPES
from kit.events import UnknownEventType, dump_data, new_event, parse_event

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


# The "publishes" column of DESIGN.md's services table, which the catalog must match.
DESIGN_EVENT_TYPES = {
    "lead.created", "lead.assigned", "lead.contacted", "lead.qualified", "lead.disqualified",
    "lead.converted", "lead.followup_due", "lead.response_overdue", "lead.erased",
    "deal.created", "deal.stage_changed", "deal.updated", "deal.won", "deal.lost",
    "deal.stalled",
    "quote.created", "quote.submitted", "quote.approved", "quote.rejected", "quote.sent",
    "quote.accepted", "quote.declined", "quote.expired", "quote.voided",
    "contract.created", "contract.signed", "payment.received", "contract.fully_paid",
    # not in DESIGN.md's table yet: deal.lost voids an unsigned contract; a new signing
    # link replaces the last and must reach the customer
    "contract.voided", "contract.sent",
    "ticket.opened", "ticket.assigned", "ticket.first_responded", "ticket.resolved",
    "ticket.reopened", "ticket.sla_breached", "ticket.rated",
    "notification.sent", "notification.failed",
    "ticket.status_changed", "ticket.sla_warning",
    "delivery.opened", "delivery.step_completed", "delivery.accepted",
    # CRM records (issue 14)
    "lead.updated", "lead.recycled", "account.created", "account.merged", "contact.created",
    "deal.activity_logged", "deal.task_due", "account.updated", "contact.updated",
    # webhooks (issue 16)
    "webhook.subscription_disabled",
}


def test_catalog_has_every_event_type_named_in_the_design():
    assert DESIGN_EVENT_TYPES == set(EVENT_TYPES)


def test_catalog_groups_types_by_their_producer():
    prefixes = {"leads": ("lead.", "account.", "contact."), "deals": ("deal.",),
                "quotes": ("quote.", "contract.", "payment."),
                "support": ("ticket.", "delivery."), "notify": ("notification.",),
                "webhooks": ("webhook.",)}
    for service, events in CATALOG.items():
        assert all(t.startswith(prefixes[service]) for t in events)


def test_new_event_is_a_cloudevent_with_json_safe_data():
    event = new_event("deal.won", "d1", {
        "deal_id": "d1", "pipeline_id": "default", "from_stage": "contract_payment",
        "amount": Decimal("1200.50"), "currency": "EUR", "created_at": T0, "won_at": T0},
        7, actor="u1", correlationid="c1", time=T0)
    assert event["specversion"] == "1.0"
    assert uuid.UUID(event["id"])
    assert event["source"] == "/dealflow/deals"
    assert event["time"] == "2026-11-26T12:00:00.000Z"
    assert event["dealflowsequence"] == 7 and "sequence" not in event
    assert event["actor"] == "u1" and event["correlationid"] == "c1"
    assert event["data"]["amount"] == "1200.50"
    assert event["data"]["won_at"] == "2026-11-26T12:00:00.000Z"
    envelope, data = parse_event(event)
    assert data["amount"] == Decimal("1200.50") and data["won_at"] == T0


@pytest.mark.parametrize("etype, data", [
    ("deal.won", {"deal_id": "d1", "pipeline_id": "default", "from_stage": "contract_payment",
                  "amount": Decimal("1200.50"), "currency": "EUR", "created_at": T0,
                  "won_at": T0}),
    ("payment.received", {"contract_id": "c1", "deal_id": "d1", "quote_id": "q1",
                          "payment_id": "p1", "amount": Decimal("88"), "currency": "JPY",
                          "paid": Decimal("88"), "paid_total": Decimal("88"),
                          "method": "bank_transfer", "received_at": T0, "first": True}),
    ("lead.assigned", {"lead_id": "l1", "owner_id": "王芳", "team": "华东", "rule": "import",
                       "status": "new", "historical": True}),
])
def test_loaded_data_dumps_back_to_what_the_producer_published(etype, data):
    published = new_event(etype, "s1", data, 1)
    _, loaded = parse_event(json.loads(json.dumps(published)))
    dumped = dump_data(etype, loaded)
    # (the optional fields the producer left out load as None)
    assert {k: v for k, v in dumped.items() if v is not None} == published["data"]


@pytest.mark.parametrize("etype, data, field", [
    ("lead.disqualified", {"lead_id": "l", "source": "api"}, "reason"),
    ("lead.created", {"lead_id": "l", "name": "n", "source": "api", "score": 1, "grade": "E",
                      "created_at": T0}, "grade"),
    ("deal.created", {"deal_id": "d", "pipeline_id": "p", "stage": "s", "name": "n",
                      "probability": 101, "created_at": T0}, "probability"),
    ("quote.accepted", {"quote_id": "q", "deal_id": "d", "version": 1, "total": Decimal("1"),
                        "currency": "EURO", "accepted_at": T0}, "currency"),
    ("ticket.rated", {"ticket_id": "t", "priority": "low", "score": 6}, "score"),
    ("ticket.opened", {"ticket_id": "t", "priority": "low", "channel": "c", "subject": "s",
                       "opened_at": T0, "colour": "red"}, "colour"),
])
def test_new_event_refuses_data_that_breaks_the_contract(etype, data, field):
    with pytest.raises(ValidationError) as err:
        new_event(etype, "x", data, 1)
    assert field in err.value.messages["data"]


def test_unknown_type_is_refused():
    with pytest.raises(UnknownEventType):
        new_event("lead.exploded", "x", {}, 1)


@pytest.mark.parametrize("field, value", [
    ("specversion", "0.3"), ("type", "lead.exploded"), ("dealflowsequence", 0),
    ("dealflowsequence", "3"), ("dealflowsequence", 1.5),
    ("source", "somewhere"), ("time", "yesterday"),
])
def test_parse_event_refuses_a_broken_envelope(field, value):
    event = new_event("ticket.reopened", "t", {"ticket_id": "t", "priority": "high"}, 2)
    event[field] = value
    with pytest.raises(ValidationError) as err:
        parse_event(event)
    assert field in err.value.messages


@pytest.mark.parametrize("legacy", [3, "3"])
def test_parse_event_still_reads_the_version_from_a_sequence_attribute(legacy):
    event = new_event("ticket.reopened", "t", {"ticket_id": "t", "priority": "high"}, 2)
    del event["dealflowsequence"]
    event["sequence"] = legacy
    envelope, _ = parse_event(event)
    assert envelope["sequence"] == 3


@pytest.mark.parametrize("legacy", [0, "", "3a", "٣", None])
def test_parse_event_refuses_a_legacy_sequence_that_is_no_version(legacy):
    event = new_event("ticket.reopened", "t", {"ticket_id": "t", "priority": "high"}, 2)
    del event["dealflowsequence"]
    event["sequence"] = legacy
    with pytest.raises(ValidationError) as err:
        parse_event(event)
    assert "dealflowsequence" in err.value.messages


def test_the_version_is_read_as_sequence_by_handlers():
    event = new_event("ticket.reopened", "t", {"ticket_id": "t", "priority": "high"}, 2)
    envelope, _ = parse_event(event)
    assert envelope["sequence"] == 2 and "dealflowsequence" not in envelope


def test_the_envelope_is_a_cloudevent_by_the_sdk_in_structured_mode():
    from cloudevents.core.bindings import rabbitmq
    from cloudevents.core.formats.json import JSONFormat

    from kit.amqp import CLOUDEVENTS_JSON

    event = new_event("deal.won", "d1", {
        "deal_id": "d1", "pipeline_id": "default", "from_stage": "contract_payment",
        "amount": Decimal("1200.50"), "currency": "EUR", "created_at": T0, "won_at": T0},
        7, actor="u1", correlationid="c1", time=T0)
    message = rabbitmq.RabbitMQMessage(
        headers={}, content_type=CLOUDEVENTS_JSON, body=json.dumps(event).encode())
    parsed = rabbitmq.from_rabbitmq(message, JSONFormat())  # validates, or raises
    assert parsed.get_id() == event["id"] and parsed.get_type() == "deal.won"
    assert parsed.get_time() == T0 and parsed.get_subject() == "d1"
    assert parsed.get_extension("dealflowsequence") == 7
    assert parsed.get_extension("sequence") is None  # CloudEvents' own is a string
    assert parsed.get_extension("actor") == "u1"
    assert parsed.get_data() == event["data"]


def test_consumers_ignore_fields_added_later():
    event = new_event("ticket.reopened", "t", {"ticket_id": "t", "priority": "high"}, 2)
    event["data"]["added_in_v2"] = True
    _, data = parse_event(event)
    assert "added_in_v2" not in data


def test_asyncapi_document_is_fresh():
    committed = (ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8")
    assert committed == asyncapi.render(), "run `make asyncapi` and commit docs/asyncapi.yaml"


def test_asyncapi_documents_every_event_with_its_exchange():
    doc = asyncapi.build()
    channels = doc["channels"]
    assert len([name for name in channels if "/" in name]) == len(EVENT_TYPES)
    for service, events in CATALOG.items():
        for etype in events:
            binding = channels[f"{service}.events/{etype}"]["bindings"]["amqp"]
            assert binding["exchange"]["name"] == f"{service}.events"
            assert binding["exchange"]["type"] == "topic"
