"""Losing a RabbitMQ node in the middle of a flow (issue 17): leads, deals and metrics run as
processes against the three-node cluster, with every node in AMQP_URI and quorum queues.
The node they are all connected to, which also leads their queues, is killed with
`kill -9`; the flow goes on through the other two nodes without restarting a service; the
node comes back and rejoins. Nothing is lost and nothing is counted twice."""
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from pymongo import MongoClient

import kit.amqp  # noqa: F401 - teaches kombu to decode the CloudEvents content type
from tests.conftest import MONGO_URI
from tests.support.amqp import Subscriber, distinct
from tests.support.platform import Platform
from tests.support.tokens import bearer
from tests.support.wait import wait_for

SERVICES = ("leads", "deals", "metrics")
LEADS = 36           # leads taken through the funnel while the cluster loses a node
KILL_AFTER = 8       # converted leads before the kill: the flow is well under way
AFTER_REJOIN = 4     # more leads once the node is back
STAGES = ("lead_created", "lead_contacted", "lead_qualified", "lead_converted", "discovery")
QUORUM = {"x-queue-type": "quorum"}
KILLED, SURVIVOR = "c1", "c2"


@pytest.fixture
def cluster_platform(rabbit_cluster, cluster_vhost):
    running = Platform(
        rabbit_cluster.uri(cluster_vhost), services=SERVICES, AMQP_QUEUE_TYPE="quorum",
        KPIS_REFRESH_SECONDS=1, OUTBOX_SWEEP_INTERVAL=1, OUTBOX_GRACE=0.5,
        CONSUMER_RETRY_DELAYS_MS="[500, 1000, 2000, 5000, 10000]")
    try:
        yield running.start()
    finally:
        running.stop()
        running.drop_databases()


def through_the_funnel(session, leads):
    """Create, contact, qualify and convert one lead; its id."""
    created = session.post(leads + "/api/v1/leads", timeout=30, json={
        "name": "Lead", "email": f"{uuid.uuid4().hex[:12]}@example.com", "source": "api"})
    assert created.status_code == 201, created.text
    lead_id = created.json()["id"]
    for status in ("contacted", "qualified"):
        moved = session.post(f"{leads}/api/v1/leads/{lead_id}/status", timeout=30,
                             json={"status": status})
        assert moved.status_code == 200, moved.text
    converted = session.post(f"{leads}/api/v1/leads/{lead_id}/convert", timeout=30,
                             json={"amount": "1000.00", "currency": "EUR"})
    assert converted.status_code == 200, converted.text
    return lead_id


def entered(metrics):
    """dealflow_funnel_entered_total by stage, from the metrics service's exposition."""
    text = requests.get(metrics + "/metrics", timeout=10).text
    return {s.labels["stage"]: s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == "dealflow_funnel_entered_total"}


def counted_exactly(metrics, n):
    got = entered(metrics)
    return all(got.get(stage) == n for stage in STAGES) and got


def pending_outboxes(databases):
    client = MongoClient(MONGO_URI)
    try:
        return [(db, coll, doc["_id"]) for db in databases
                for coll in client[db].list_collection_names()
                for doc in client[db][coll].find({}, {"outbox": 1}) if doc.get("outbox")]
    finally:
        client.close()


@pytest.mark.timeout(600)  # the session's cluster start counts here when this runs first
def test_killing_a_node_mid_flow_loses_nothing_and_counts_nothing_twice(
        rabbit_cluster, cluster_vhost, cluster_platform):
    amqp_uri = cluster_platform.amqp_uri
    leads, metrics = cluster_platform.urls["leads"], cluster_platform.urls["metrics"]
    # quorum queues of an outside subscriber, declared (led by c1) before anything happens
    for service in ("leads", "deals"):
        Subscriber(amqp_uri, service, queue_arguments=QUORUM).close()
    pids = {name: cluster_platform.pid(name) for name in SERVICES}
    log_start = {name: cluster_platform.logs[name].stat().st_size for name in SERVICES}

    queues = rabbit_cluster.queues(SURVIVOR, cluster_vhost)
    not_replicated = {name: q["type"] for name, q in queues.items()
                      if q["type"] not in ("quorum", "stream")}
    assert not_replicated == {}, "every queue, retries and dead letters included, is quorum"
    handler_queues = [name for name in queues if "--" in name and ".retry." not in name
                      and not name.endswith(".dlq")]
    assert handler_queues, queues
    assert {queues[name]["leader"] for name in handler_queues} == {
        rabbit_cluster.node_name(KILLED)}, "the handlers' queues are led by the node we kill"
    assert set(rabbit_cluster.connections(cluster_vhost)) == {
        rabbit_cluster.node_name(KILLED)}, "every service is connected to the node we kill"

    local = threading.local()
    converted = []

    def one(_):
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers.update(bearer())
        converted.append(through_the_funnel(local.session, leads))

    with ThreadPoolExecutor(4) as pool:
        flow = [pool.submit(one, i) for i in range(LEADS)]
        assert wait_for(lambda: len(converted) >= KILL_AFTER, timeout=120, interval=0.02)
        rabbit_cluster.kill(KILLED)
        for done in flow:
            done.result()
    assert len(converted) == LEADS

    # while the node is down: consumers and outbox relays work through the other nodes
    got = wait_for(lambda: counted_exactly(metrics, LEADS), timeout=120, interval=0.5)
    assert got, f"metrics counted {entered(metrics)} with {KILLED} down"
    assert not rabbit_cluster.process_alive(KILLED), "all of it happened with the node down"
    assert {name: cluster_platform.pid(name) for name in SERVICES} == pids, "no restart"
    moved = rabbit_cluster.connections(cluster_vhost)
    assert moved and rabbit_cluster.node_name(KILLED) not in moved, moved

    # the node comes back and rejoins; its queue replicas catch up
    rabbit_cluster.start_node(KILLED)
    everyone = sorted(rabbit_cluster.node_name(n) for n in ("c1", "c2", "c3"))
    assert wait_for(lambda: rabbit_cluster.running_nodes(KILLED) == everyone, timeout=60)

    def all_members_online():
        qs = rabbit_cluster.queues(SURVIVOR, cluster_vhost)
        return all(len(q["online"]) == 3 for q in qs.values() if q["type"] == "quorum")

    assert wait_for(all_members_online, timeout=60, interval=1)

    session = requests.Session()
    session.headers.update(bearer())
    converted += [through_the_funnel(session, leads) for _ in range(AFTER_REJOIN)]
    total = LEADS + AFTER_REJOIN
    got = wait_for(lambda: counted_exactly(metrics, total), timeout=60, interval=0.5)
    assert got, f"metrics counted {entered(metrics)} after {KILLED} rejoined"

    assert wait_for(lambda: not pending_outboxes(cluster_platform.databases), timeout=30), \
        pending_outboxes(cluster_platform.databases)
    events = []
    for service in ("leads", "deals"):
        subscriber = Subscriber(amqp_uri, service, queue_arguments=QUORUM)
        try:
            events += distinct(subscriber.drain(timeout=5))
        finally:
            subscriber.close()
    by_type = {}
    for event in events:
        by_type.setdefault(event["type"], set()).add(event["subject"])
    for kind in ("lead.created", "lead.contacted", "lead.qualified", "lead.converted"):
        assert by_type.get(kind) == set(converted), kind
    assert len(by_type.get("deal.created", ())) == total
    assert counted_exactly(metrics, total), "and nothing was counted twice since"
    waiting = {name: q["messages"] for name, q in
               rabbit_cluster.queues(SURVIVOR, cluster_vhost).items()
               if q["type"] == "quorum" and q["messages"]}
    assert waiting == {}, "nothing waits for a retry or sits in a dead-letter queue"
    assert {name: cluster_platform.pid(name) for name in SERVICES} == pids, "no restart"
    for name in SERVICES:  # the consumers logged their retries without the nodes' passwords
        with open(cluster_platform.logs[name], "rb") as log:
            log.seek(log_start[name])
            assert b"guest:guest@" not in log.read(), name
