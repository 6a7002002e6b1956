"""A list of broker addresses in AMQP_URI (kombu's failover form, `;` between URLs, as a
clustered RabbitMQ gives one per node): a service whose first listed node is down starts,
is ready, consumes and publishes through the next one."""
from urllib.parse import urlparse

from leads.service import LeadsService
from tests.conftest import free_port
from tests.support.amqp import Subscriber
from tests.support.wait import wait_for


def with_dead_nodes_first(amqp_uri):
    url = urlparse(amqp_uri)
    dead = url._replace(netloc=f"{url.username}:{url.password}@127.0.0.1:{free_port()}")
    dead2 = url._replace(netloc=f"{url.username}:{url.password}@127.0.0.1:{free_port()}")
    return f"{dead.geturl()};{dead2.geturl()};{amqp_uri}"


def test_service_fails_over_to_the_next_listed_node(container_factory, make_config, api,
                                                    rabbit_config):
    config = make_config("leads", AMQP_URI=with_dead_nodes_first(rabbit_config["AMQP_URI"]),
                         SLA={"response_minutes": 0})
    events = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.created")
    try:
        container_factory(LeadsService, config).start()
        client = api(config)
        assert wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30)
        created = client.post("/api/v1/leads", json={
            "name": "Ada", "email": "ada@example.com", "source": "api"})
        assert created.status_code == 201, created.text
        (event,) = events.drain(expect=1, timeout=15)
        assert event["subject"] == created.json()["id"]
    finally:
        events.close()


def test_consumer_declares_its_queues_through_the_next_listed_node(container_factory,
                                                                   make_config, api,
                                                                   rabbit_config):
    from metrics.service import MetricsService

    config = make_config("metrics", AMQP_URI=with_dead_nodes_first(rabbit_config["AMQP_URI"]))
    container_factory(MetricsService, config).start()  # declares and binds every queue
    client = api(config)
    assert wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30)
