"""A broker address list (kombu's failover form) carries one password per node; a
consumer that lost its broker logs the addresses it retries with every password
redacted (nameko redacted only the first)."""
import logging
from types import SimpleNamespace

import pytest

from kit.amqp import redacted
from kit.consumer import ReliableQueueConsumer

NODES = ("amqp://leads:s3cret-1@node1:5672/;amqp://leads:s3cret-2@node2:5672/;"
         "amqp://leads:s3cret-3@node3:5672/")


@pytest.mark.parametrize("uri, expected", [
    (NODES, "amqp://leads:***@node1:5672/;amqp://leads:***@node2:5672/;"
            "amqp://leads:***@node3:5672/"),
    ("amqp://leads:pw@node1:5672/vh", "amqp://leads:***@node1:5672/vh"),
    ("amqp://node1:5672/;amqp://u:pw@node2/", "amqp://node1:5672/;amqp://u:***@node2/"),
])
def test_every_password_of_an_address_list_is_redacted(uri, expected):
    assert redacted(uri) == expected


def test_a_consumer_retrying_its_broker_logs_no_password(caplog):
    consumer = ReliableQueueConsumer()
    consumer.container = SimpleNamespace(config={"AMQP_URI": NODES})
    with caplog.at_level(logging.WARNING):
        consumer.on_connection_error(ConnectionRefusedError(111, "refused"), 0)
    assert "node3" in caplog.text
    assert "s3cret" not in caplog.text
