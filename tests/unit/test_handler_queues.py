"""deploy/rabbitmq/handler-queues.txt, the queues access.py --prune-queues keeps, is what
the services' code declares: a handler added without regenerating it would have its queue
deleted by the next run of the access job."""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "deploy/rabbitmq" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


handler_queues = load("handler_queues")
access = load("access")


def test_the_committed_list_is_current():
    assert (ROOT / "deploy/rabbitmq/handler-queues.txt").read_text() == \
        handler_queues.render(), "stale: make handler-queues"


def test_the_list_names_every_handler_by_its_queue():
    queues = access.current_queues()
    assert "evt-leads-batch--metrics.apply_leads_events" in queues
    assert "evt-leads-lead.converted--deals.handle_leads_lead_converted" in queues
    assert "evt-quotes-contract.sent--notify.handle_quotes_contract_sent" in queues
    for queue in queues:
        match = access.HANDLER_QUEUE.fullmatch(queue)
        assert match and match["suffix"] is None, queue
        # and the service's broker user may declare and read it
        assert re.fullmatch(access.permissions(match["service"])["read"], queue), queue


@pytest.mark.parametrize(("name", "suffix"), [
    ("evt-deals-deal.won--support.handle_deals_deal_won", None),
    ("evt-deals-deal.won--support.handle_deals_deal_won.retry.3", ".retry.3"),
    ("evt-deals-deal.won--support.handle_deals_deal_won.dlq", ".dlq"),
    ("evt-leads-batch--metrics.apply_leads_events.retry.1", ".retry.1"),
])
def test_retry_and_dead_letter_queues_belong_to_their_handlers_queue(name, suffix):
    match = access.HANDLER_QUEUE.fullmatch(name)
    assert match["suffix"] == suffix
    assert match["main"] == name.removesuffix(suffix or "")


@pytest.mark.parametrize("name", [
    "billing.deal-events", "deals.events.stream", "evt-deals-deal.won", "evt-x-y--z",
    "evt-deals-deal.won--support.handle_deals_deal_won-5f2a",  # a broadcast handler's
])
def test_other_queues_are_not_handler_queues(name):
    assert access.HANDLER_QUEUE.fullmatch(name) is None
