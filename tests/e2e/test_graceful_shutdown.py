"""SIGTERM in the middle of a flow (kit.shutdown, DESIGN "Draining"): a `nameko run`
process drains, finishes what it accepted, flushes its outbox and exits 0."""
import signal
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from pymongo import MongoClient

import kit.amqp  # noqa: F401 - teaches kombu to decode the CloudEvents content type
from tests.conftest import MONGO_URI
from tests.support.amqp import Subscriber
from tests.support.platform import Platform

LEADS = 300
CONCURRENCY = 12
SIGTERM_AFTER = 40  # created leads before the signal: the flow is well under way


@pytest.fixture
def leads_process(rabbit_config):
    running = Platform(rabbit_config["AMQP_URI"], services=("leads",),
                       SHUTDOWN_DRAIN_SECONDS=1, SHUTDOWN_GRACE_SECONDS=10).start()
    yield running
    running.stop()
    running.drop_databases()


def outcome(session, url):
    """201 with the id, 503 with its content type, or the connection error's kind."""
    try:
        resp = session.post(url + "/api/v1/leads", timeout=15, json={
            "name": "Lead", "email": f"{uuid.uuid4().hex[:12]}@example.com",
            "source": "api"})
    except requests.ConnectionError as exc:
        return "refused" if "Errno 111" in str(exc) else f"connection error: {exc}"
    if resp.status_code == 201:
        return ("created", resp.json()["id"])
    if resp.status_code == 503 and resp.headers["Content-Type"] == "application/problem+json":
        return "draining"
    return f"{resp.status_code}: {resp.text}"


def test_sigterm_mid_flow_loses_nothing_and_exits_zero(leads_process, rabbit_config):
    subscriber = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.created")
    url = leads_process.urls["leads"]
    local = threading.local()
    created = []
    signalled = threading.Event()

    def one(_):
        if not hasattr(local, "session"):  # kept-alive connections, as a client pool has
            local.session = requests.Session()
        result = outcome(local.session, url)
        if isinstance(result, tuple):
            created.append(result[1])
            if len(created) >= SIGTERM_AFTER and not signalled.is_set():
                signalled.set()
                leads_process.signal("leads", signal.SIGTERM)
        return result

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(one, range(LEADS)))

    assert signalled.is_set()
    assert leads_process.wait("leads", timeout=30) == 0
    unexpected = [r for r in results
                  if not isinstance(r, tuple) and r not in ("draining", "refused")]
    assert unexpected == [], "only clean 503s and refusals after the listener closed"
    assert len(created) < LEADS, "the signal stopped the flow part way"

    client = MongoClient(MONGO_URI)
    try:
        leads = {d["_id"]: d for d in client[leads_process.databases[0]].leads.find(
            {"_id": {"$in": created}}, {"outbox": 1})}
    finally:
        client.close()
    assert sorted(leads) == sorted(created), "every 201 has its lead"
    assert [i for i, d in leads.items() if d.get("outbox")] == [], "every outbox flushed"
    events = subscriber.drain(expect=len(created), timeout=5, distinct=True)
    subscriber.close()
    assert sorted(e["subject"] for e in events) == sorted(created), "and its event"
