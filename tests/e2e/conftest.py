"""End-to-end level: the platform as separate `nameko run` processes (as `make run` starts
them), real RabbitMQ, FerretDB and Prometheus; HTTP in, Prometheus out."""
from urllib.parse import urlparse

import pytest
import requests

from tests.support.platform import SERVICES, Platform
from tests.support.tokens import bearer


@pytest.fixture(autouse=True)
def platform_token(monkeypatch):
    """Every request a test sends carries an admin's token unless it sets its own
    Authorization (requests' module functions open a Session per call)."""
    original = requests.Session.__init__
    headers = bearer()

    def with_token(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.headers.update(headers)

    monkeypatch.setattr(requests.Session, "__init__", with_token)


@pytest.fixture(scope="session")
def platform(vhost_pipeline, request):
    """All five services as `nameko run` processes on one fresh vhost, for the session."""
    base = urlparse(request.config.getoption("RABBIT_AMQP_URI"))
    with vhost_pipeline.get() as vhost:
        running = Platform(f"{base.scheme}://{base.netloc}/{vhost}").start()
        yield running
        codes = running.stop()
        running.drop_databases()
        assert codes == {name: 0 for name in SERVICES}, "every service stops cleanly on SIGTERM"


@pytest.fixture
def sales_platform(rabbit_config):
    """Leads, deals and metrics as processes on the test's own vhost and databases, with
    metrics re-reading other writers' projections every second."""
    running = Platform(rabbit_config["AMQP_URI"], services=("leads", "deals", "metrics"),
                       KPIS_REFRESH_SECONDS=1).start()
    yield running
    running.stop()
    running.drop_databases()


@pytest.fixture
def quotes_platform(rabbit_config):
    """Deals, quotes and metrics as processes on the test's own vhost and databases (the
    session platform's funnel counts stay those of its own flows)."""
    running = Platform(rabbit_config["AMQP_URI"], services=("deals", "quotes", "metrics"),
                       KPIS_REFRESH_SECONDS=1).start()
    yield running
    running.stop()
    running.drop_databases()
