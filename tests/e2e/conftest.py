"""End-to-end level: the platform as separate `nameko run` processes (as `make run` starts
them), real RabbitMQ, FerretDB and Prometheus; HTTP in, Prometheus out."""
from urllib.parse import urlparse

import pytest
from pymongo import MongoClient

from tests.conftest import MONGO_URI
from tests.support.platform import SERVICES, Platform


@pytest.fixture(scope="session")
def platform(vhost_pipeline, request):
    """All five services as `nameko run` processes on one fresh vhost, for the session."""
    base = urlparse(request.config.getoption("RABBIT_AMQP_URI"))
    with vhost_pipeline.get() as vhost:
        running = Platform(f"{base.scheme}://{base.netloc}/{vhost}").start()
        yield running
        codes = running.stop()
        client = MongoClient(MONGO_URI)
        for name in running.databases:
            client.drop_database(name)
        client.close()
        assert codes == {name: 0 for name in SERVICES}, "every service stops cleanly on SIGTERM"
