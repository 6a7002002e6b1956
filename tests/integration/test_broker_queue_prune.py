"""access.py --prune-queues on a real RabbitMQ (the test's own vhost, through the
management API): the queues of handlers the services no longer have go, with their retry
queues; what a consumer still reads, a dead-letter queue holding messages, the current
handlers' queues and every queue that is not a Dealflow handler's stay."""
import importlib.util
from pathlib import Path
from urllib.parse import urlparse

import amqp
import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("access", ROOT / "deploy/rabbitmq/access.py")
access = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(access)

CURRENT = "evt-leads-batch--metrics.apply_leads_events"
# metrics took deal events one type at a time before it took them in batches
GONE = "evt-deals-deal.created--metrics.handle_deals_deal_created"
GONE_TOO = "evt-deals-deal.won--metrics.handle_deals_deal_won"
STILL_READ = "evt-deals-deal.lost--metrics.handle_deals_deal_lost"
NOT_OURS = ("billing.deal-events", "evt-deals-deal.won--billing.on_won", "deals.events.tap")


@pytest.fixture
def management(request):
    api = urlparse(request.config.getoption("RABBIT_API_URI"))
    return access.Management(f"{api.scheme}://{api.hostname}:{api.port}", api.username,
                             api.password)


@pytest.fixture
def channel(rabbit_config):
    uri = urlparse(rabbit_config["AMQP_URI"])
    connection = amqp.Connection(host=f"{uri.hostname}:{uri.port}", userid=uri.username,
                                 password=uri.password, virtual_host=rabbit_config["vhost"])
    connection.connect()
    yield connection.channel()
    connection.close()


def declare(channel, name, messages=0):
    channel.queue_declare(name, durable=True, auto_delete=False)
    for n in range(messages):
        channel.basic_publish(amqp.Message(f"{n}".encode(), delivery_mode=2), exchange="",
                              routing_key=name)


def names(management, vhost):
    return {q["name"] for q in management.queues(vhost)}


def test_the_queues_of_removed_handlers_go_and_everything_else_stays(
        management, channel, rabbit_config):
    vhost = rabbit_config["vhost"]
    for name in (CURRENT, f"{CURRENT}.retry.1", f"{CURRENT}.dlq", *NOT_OURS, STILL_READ):
        declare(channel, name, messages=1)
    declare(channel, GONE, messages=3)  # events nobody will ever read
    declare(channel, f"{GONE}.retry.1")
    declare(channel, f"{GONE}.retry.2", messages=1)
    declare(channel, f"{GONE}.dlq", messages=2)  # dead letters someone should look at
    declare(channel, GONE_TOO)
    declare(channel, f"{GONE_TOO}.dlq")
    channel.basic_consume(STILL_READ, callback=lambda message: None)

    pruned = access.prune_queues(management, vhost, access.current_queues())

    assert pruned["deleted"] == sorted([GONE, f"{GONE}.retry.1", f"{GONE}.retry.2", GONE_TOO,
                                        f"{GONE_TOO}.dlq"])
    assert set(pruned["kept"]) == {f"{GONE}.dlq", STILL_READ}
    assert "dead letters" in pruned["kept"][f"{GONE}.dlq"]
    assert names(management, vhost) == {CURRENT, f"{CURRENT}.retry.1", f"{CURRENT}.dlq",
                                        *NOT_OURS, STILL_READ, f"{GONE}.dlq"}
    # the dead letters are still there to inspect
    assert channel.queue_declare(f"{GONE}.dlq", passive=True).message_count == 2

    # once read and emptied (and the old consumer gone), the next run takes them too
    channel.queue_purge(f"{GONE}.dlq")
    channel.close()
    again = access.prune_queues(management, vhost, access.current_queues())
    assert again == {"deleted": sorted([f"{GONE}.dlq", STILL_READ]), "kept": {}}


def test_only_the_named_services_queues_are_pruned(management, channel, rabbit_config):
    vhost = rabbit_config["vhost"]
    declare(channel, GONE)
    declare(channel, "evt-leads-lead.created--notify.handle_leads_lead_created")
    pruned = access.prune_queues(management, vhost, access.current_queues(),
                                 services=("notify",))
    assert pruned == {"deleted": ["evt-leads-lead.created--notify.handle_leads_lead_created"],
                      "kept": {}}
    assert GONE in names(management, vhost)
