"""Fixtures of the metrics integration tests."""
import pytest

from kit.amqp import ConfirmingPublisher
from tests.integration.metrics import metrics_script as script


@pytest.fixture
def publish(rabbit_config):
    publisher = ConfirmingPublisher(rabbit_config["AMQP_URI"])

    def send(bodies):
        publisher.publish_batch([(*script.routed(b), b, {}) for b in bodies])

    yield send
    publisher.close()
