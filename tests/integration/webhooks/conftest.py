"""A local webhook endpoint per test (tests/support/receivers.py)."""
import pytest

from tests.support.receivers import WebhookReceiver


@pytest.fixture
def receiver():
    endpoint = WebhookReceiver().start()
    yield endpoint
    try:
        endpoint.stop()
    except OSError:  # a test left it down
        pass
