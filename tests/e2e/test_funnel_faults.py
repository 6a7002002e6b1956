"""The whole-platform funnel under faults. One platform for the module: two instances of
every service (competing consumers, timers on both), each service's broker and database
connections through TCP proxies that can cut them. Each test runs another slice of the
funnel (tests/e2e/funnel_script.py) while its fault happens, bounded in time, and ends
with the same exact assertion over everything run so far: /metrics and /api/v1/funnel
equal the KPIs computed from the script, every notification reached the inbox and the
chat robots exactly once, and every SLA warning and breach was emitted once (distinct
event ids) although two instances run the timers."""
import contextlib
import datetime as dt
import os
import threading
import time
from collections import Counter
from urllib.parse import urlparse

import pytest
from kombu import Connection

from tests.conftest import MONGO_URI
from tests.e2e import funnel_script as funnel
from tests.support.amqp import Subscriber, consumer_queues, distinct, poison
from tests.support.platform import SERVICES
from tests.support.proxy import ProxyProcess

LEADS = int(os.environ.get("FUNNEL_FAULT_LEADS", 20))  # per fault: every path of the plan
pytestmark = pytest.mark.timeout(900)
BROKER_OUTAGE, DATABASE_OUTAGE = 10, 5  # seconds


class Faulty:
    """The module's platform, proxies and the leads run on it so far."""

    def __init__(self, whole, broker, database, amqp_uri, api_uri, vhost):
        self.whole, self.broker, self.database = whole, broker, database
        self.amqp_uri, self.api_uri, self.vhost = amqp_uri, api_uri, vhost
        self.since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        self.driver = funnel.Driver(whole.urls)
        self.driver.setup()
        self.leads = []
        self.sla = Subscriber(amqp_uri, "support", "ticket.sla_warning", name="funnel-sla")
        self.sla.conn.default_channel.queue_bind("funnel-sla", "support.events",
                                                 "ticket.sla_breached")
        self.sla_events = []

    def run_during(self, fault):
        """A slice of the funnel with `fault(progress)` running beside it, then the exact
        check; `progress(n)` waits until the slice took n leads through."""
        leads = funnel.plan(LEADS)
        errors = []
        start = self.driver.finished

        def progress(n):
            funnel.poll(lambda: self.driver.finished - start >= n or errors,
                        "the funnel to progress", 300)

        def drive():
            try:
                self.driver.run(leads)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                errors.append(exc)

        driving = threading.Thread(target=drive)
        driving.start()
        try:
            fault(progress)
        finally:
            driving.join()
        if errors:
            raise errors[0]
        self.leads.extend(leads)
        self.assert_exact()

    def assert_exact(self):
        want = funnel.expected(self.leads, duplicates=3)
        assert funnel.differences(self.whole, want, self.since, timeout=90) == {}
        urgent = sum(1 for lead in self.leads if lead.ticket == "urgent")
        self.sla_events.extend(self.sla.drain(timeout=2))
        once = Counter((e["subject"], e["type"], e["data"]["kind"])
                       for e in distinct(self.sla_events))
        assert len(once) == 4 * urgent and set(once.values()) <= {1}, once


@pytest.fixture(scope="module")
def faulty(vhost_pipeline, request, tmp_path_factory):
    base = urlparse(request.config.getoption("RABBIT_AMQP_URI"))
    api_uri = request.config.getoption("RABBIT_API_URI")
    mongo = urlparse(MONGO_URI)
    with vhost_pipeline.get() as vhost:
        workdir = tmp_path_factory.mktemp("faults")
        broker = ProxyProcess(base.hostname, base.port, workdir)
        database = ProxyProcess(mongo.hostname, mongo.port, workdir)
        auth = f"{base.username}:{base.password}@"
        whole = funnel.WholePlatform(
            f"{base.scheme}://{auth}127.0.0.1:{broker.port}/{vhost}",
            workdir, replicas=2,
            MONGO_URI=f"mongodb://127.0.0.1:{database.port}/?directConnection=true",
        )
        try:
            whole.start()
        except BaseException:
            broker.stop()
            database.stop()
            raise
        direct = f"{base.scheme}://{base.netloc}/{vhost}"  # the tests' own, never cut
        state = None
        try:
            state = Faulty(whole, broker, database, direct, api_uri, vhost)
            yield state
        finally:
            if state is not None:
                state.sla.close()
            whole.stop()
            broker.stop()
            database.stop()


def depths(faulty, queues):
    with Connection(faulty.amqp_uri) as conn:
        channel = conn.channel()
        return {q: channel.queue_declare(q + ".dlq", passive=True).message_count
                for q in queues}


def test_poison_and_undecodable_messages_on_every_queue_are_dead_lettered(faulty):
    queues = consumer_queues(faulty.api_uri, faulty.vhost)
    # leads consumes nothing; webhooks reads the producers' streams, where a message that
    # is no event is skipped (a stream keeps it), not dead-lettered
    assert {q.split("--")[1].split(".")[0] for q in queues} == \
        set(SERVICES) - {"leads", "webhooks"}
    before = depths(faulty, queues)

    def fault(progress):
        progress(2)
        poison(faulty.amqp_uri, queues)

    faulty.run_during(fault)
    want = {q: n + 2 for q, n in before.items()}
    assert funnel.settled(lambda: depths(faulty, queues), want, 30) == want


def test_rabbitmq_unavailable_for_10_s(faulty):
    def fault(progress):
        progress(3)
        faulty.broker.down()
        time.sleep(BROKER_OUTAGE)  # the outage itself, not a wait for a result
        faulty.broker.up()

    faulty.run_during(fault)


def test_database_unavailable_for_5_s(faulty):
    """The cut lands between HTTP requests (they wait at the gates meanwhile): an answer
    lost with the connection leaves the client unable to tell whether the write was made
    (a retried status move then meets 409), which is the client's concern, not the
    platform's. Relays, consumers, timers and notify's deliveries meet the outage."""
    def fault(progress):
        progress(3)
        with contextlib.ExitStack() as stack:
            for gate in faulty.driver.gates.values():
                stack.enter_context(gate.held())
            faulty.database.down()
            time.sleep(DATABASE_OUTAGE)
            faulty.database.up()

    faulty.run_during(fault)


def test_kill_9_of_each_service_in_turn(faulty):
    def fault(progress):
        for n, name in enumerate(SERVICES):
            progress(n * LEADS // (2 * len(SERVICES)))
            with faulty.driver.gates[name].held():
                faulty.whole.platform.crash(name)

    faulty.run_during(fault)
