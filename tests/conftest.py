"""Shared test set-up for every level.

eventlet is monkey-patched here, first, before anything imports pymongo or kombu: nameko's
pytest plugin no longer does it. RabbitMQ and MongoDB are real servers (RabbitMQ from
Debian's package, FerretDB locally; `AMQP_URI`, `RABBIT_API_URI` and `MONGO_URI` point
elsewhere). Each test gets its own RabbitMQ vhost (nameko's `rabbit_config`) and its own
MongoDB database, dropped afterwards, so tests never see each other's messages or data.
"""
import eventlet

eventlet.monkey_patch()

import os  # noqa: E402
import socket  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402
from pymongo import MongoClient  # noqa: E402

from kit.config import load_config  # noqa: E402
from tests.support import tokens  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MONGO_URI = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017")


def pytest_configure(config):
    config.option.RABBIT_AMQP_URI = os.environ.get(
        "AMQP_URI", "pyamqp://guest:guest@127.0.0.1:5672/")
    config.option.RABBIT_API_URI = os.environ.get(
        "RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672")
    config.option.suppress_eventlet_notification = True


_GIVEN = set()


def free_port():
    """A port nobody listens on, and never one this run handed out before: a process
    binds its port a moment after it was chosen, so two choices must not meet."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


@pytest.fixture(scope="session")
def mongo_client():
    client = MongoClient(MONGO_URI, tz_aware=True, serverSelectionTimeoutMS=5000)
    yield client
    client.close()


@pytest.fixture
def mongo_db_name(mongo_client):
    """The test's database; databases named after it (`<name>_quotes`: a test's second
    service) are dropped with it, after the query-plan check has explained their queries."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    for database in mongo_client.list_database_names():
        if database == name or database.startswith(f"{name}_"):
            mongo_client.drop_database(database)


@pytest.fixture
def mongo_db(mongo_client, mongo_db_name):
    return mongo_client[mongo_db_name]


@pytest.fixture
def make_config(rabbit_config, mongo_db_name):
    """A service's own config.yml, pointed at this test's vhost and database, with short
    timers so retries and sweeps happen within a test's patience."""

    def make(service, **overrides):
        config = load_config(ROOT / "services" / service / "config.yml")
        config.pop("LOGGING", None)
        config.update({
            "AMQP_URI": rabbit_config["AMQP_URI"],
            "MONGO_URI": MONGO_URI,
            "MONGO_DATABASE": mongo_db_name,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        })
        # security on, as deployed: the tests' own key pair and people directory
        for key, value in tokens.auth_settings().items():
            config[key] = {**config.get(key, {}), **value}
        if "LINKS" in config:  # a service that signs links refuses to start without a key
            config["LINKS"] = {**config["LINKS"], "keys": "test=" + "k" * 40}
        if "SEAL" in config:  # nor one that seals secrets
            config["SEAL"] = {**config["SEAL"], "keys": "test=" + "s" * 40}
        config["OUTBOX"] = {**config.get("OUTBOX", {}), "sweep_interval_seconds": 0.5,
                            "grace_seconds": 0.5}
        # five quick retries unless a test asks for another count
        config["CONSUMER"] = {"retry_delays_ms": None, "max_retries": 5, "retry_delay_ms": 100}
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
        return config

    return make


class Api:
    """A small HTTP client for one running container (nameko's web_session fixture
    breaks on Werkzeug 3). It sends an admin's token unless given another set of
    headers (`auth={}` sends none)."""

    def __init__(self, config, auth=None):
        self.base = f"http://{config['WEB_SERVER_ADDRESS']}"
        self.session = requests.Session()
        self.session.headers.update(tokens.bearer() if auth is None else auth)

    def __getattr__(self, method):
        def call(path, **kwargs):
            kwargs.setdefault("timeout", 30)
            return self.session.request(method.upper(), self.base + path, **kwargs)
        return call


@pytest.fixture
def bearer():
    """Headers with a token: `bearer("rep", sub="ann", team="dach")`."""
    return tokens.bearer


@pytest.fixture
def api():
    made = []

    def make(config, auth=None):
        client = Api(config, auth)
        made.append(client)
        return client

    yield make
    for client in made:
        client.session.close()


@pytest.fixture(scope="session")
def rabbit_cluster():
    """The three-node RabbitMQ cluster (deploy/local/rabbitmq-cluster.sh), started once per
    session and stopped after it; one that `make cluster` already runs is used and left
    running. A node a test killed is started again before the next test."""
    from tests.support.cluster import RabbitCluster

    cluster = RabbitCluster()
    ours = not cluster.is_up()
    if ours:
        cluster.start()
    yield cluster
    if ours:
        cluster.stop()
    else:
        cluster.restart_dead_nodes()


@pytest.fixture
def cluster_vhost(rabbit_cluster):
    """A vhost of the test's own on the cluster, on every node, deleted afterwards."""
    vhost = rabbit_cluster.add_vhost()
    yield vhost
    rabbit_cluster.restart_dead_nodes()  # a node the test killed and left down
    rabbit_cluster.delete_vhost(vhost)
