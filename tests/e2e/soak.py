"""`make soak`: the whole-platform funnel (tests/e2e/funnel_script.py) at a steady rate for
SOAK_MINUTES (default 30), with faults injected at random between and during rounds: a
kill -9 of a service, RabbitMQ or the database cut off (TCP proxies, as the fault tests
do), poison and undecodable messages. It never stops the shared RabbitMQ or FerretDB:
it runs on a vhost and databases of its own, removed afterwards.

It reports to var/soak-report.json and var/soak-report.md:
- lost and doubled: after each round, every KPI, the funnel, the inbox and the chat
  robots compared with what the script did so far (lower is lost, higher is doubled),
  and timers that fired twice (two event ids for one SLA clock and threshold);
- late: a histogram of event latency (the event's time to its arrival at a subscriber
  bound to every service's exchange), and how many events arrived more than once
  (at-least-once delivery: consumers dedupe them; informational);
- memory: each service's RSS sampled after every round, and the growth of the process
  running at the end from its second sample (after its first round) to its last.

    SOAK_MINUTES=5 SOAK_LEADS=20 SOAK_ROUND_SECONDS=60 python -m tests.e2e.soak
"""
import tests.conftest  # noqa: F401,I001 - eventlet's monkey patching first, as in the tests

import contextlib
import datetime as dt
import json
import os
import random
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import quote, urlparse

import requests
from kombu import Connection, Exchange, Queue

from tests.conftest import MONGO_URI, ROOT
from tests.e2e import funnel_script as funnel
from tests.support.amqp import consumer_queues, poison
from tests.support.platform import SERVICES
from tests.support.proxy import ProxyProcess

MINUTES = float(os.environ.get("SOAK_MINUTES", 30))
LEADS = int(os.environ.get("SOAK_LEADS", 20))          # per round
ROUND_SECONDS = float(os.environ.get("SOAK_ROUND_SECONDS", 60))
SEED = int(os.environ.get("SOAK_SEED", 0)) or random.SystemRandom().randrange(1, 10**6)
AMQP = os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
API = os.environ.get("RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672")
FAULTS = ("none", "kill", "broker", "database", "poison")
# latency buckets (seconds) of the report's histogram
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, float("inf"))
LATE_SECONDS = 10


class Events:
    """Every event of every service's exchange, read by a subscriber of its own."""

    def __init__(self, amqp_uri):
        self.conn = Connection(amqp_uri)
        self.queue = Queue(f"soak-{uuid.uuid4().hex[:8]}", durable=True)
        channel = self.conn.channel()
        self.queue(channel).declare()
        for service in SERVICES:
            exchange = Exchange(f"{service}.events", type="topic", durable=True)
            exchange(channel).declare()
            channel.queue_bind(self.queue.name, exchange.name, "#")
        self.seen = Counter()
        self.latencies = []
        self.sla = Counter()
        self._stop = False
        self.thread = threading.Thread(target=self._consume, daemon=True)
        self.thread.start()

    def _consume(self):
        with self.conn.SimpleQueue(self.queue) as q:
            while not self._stop:
                try:
                    msg = q.get(block=True, timeout=1)
                except q.Empty:
                    continue
                msg.ack()
                event = msg.payload if isinstance(msg.payload, dict) else {}
                if event.get("id") is None:
                    continue
                self.seen[event["id"]] += 1
                if self.seen[event["id"]] > 1:
                    continue
                sent = dt.datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
                self.latencies.append((dt.datetime.now(dt.UTC) - sent).total_seconds())
                if event["type"] in ("ticket.sla_warning", "ticket.sla_breached"):
                    self.sla[(event["subject"], event["type"], event["data"]["kind"])] += 1

    def close(self):
        self._stop = True
        self.thread.join(timeout=5)
        with Connection(self.conn.as_uri(include_password=True)) as conn:
            self.queue(conn.channel()).delete()
        self.conn.release()

    def histogram(self):
        counts = Counter()
        for seconds in self.latencies:
            counts[next(b for b in BUCKETS if seconds <= b)] += 1
        return {("+Inf" if b == float("inf") else f"<={b}"): counts[b] for b in BUCKETS}


def rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Soak:
    def __init__(self, workdir):
        base = urlparse(AMQP)
        self.vhost = f"soak_{uuid.uuid4().hex[:8]}"
        self.api = API.rstrip("/")
        requests.put(f"{self.api}/api/vhosts/{self.vhost}", timeout=10).raise_for_status()
        requests.put(f"{self.api}/api/permissions/{self.vhost}/{base.username}", timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        mongo = urlparse(MONGO_URI)
        self.broker = ProxyProcess(base.hostname, base.port, workdir)
        self.database = ProxyProcess(mongo.hostname, mongo.port, workdir)
        auth = f"{base.username}:{base.password}@"
        self.amqp_uri = f"amqp://{base.netloc}/{self.vhost}"
        self.whole = funnel.WholePlatform(
            f"amqp://{auth}127.0.0.1:{self.broker.port}/{self.vhost}", workdir,
            MONGO_URI=f"mongodb://127.0.0.1:{self.database.port}/?directConnection=true",
            LOG_LEVEL="ERROR").start()
        self.events = Events(self.amqp_uri)
        self.driver = funnel.Driver(self.whole.urls, log=lambda *_: None)
        self.driver.setup()
        self.random = random.Random(SEED)
        self.leads, self.rounds, self.memory = [], [], {name: [] for name in SERVICES}
        self.since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        self.started = time.monotonic()
        self.poisoned = 0  # messages injected into each consumer queue

    # faults
    def fault(self, kind):
        if kind == "kill":
            name = self.random.choice(SERVICES)
            with self.driver.gates[name].held():
                self.whole.platform.crash(name)
            return f"kill -9 {name}"
        if kind in ("broker", "database"):
            proxy, seconds = (self.broker, 10) if kind == "broker" else (self.database, 5)
            with contextlib.ExitStack() as stack:
                if kind == "database":  # between HTTP requests, as test_funnel_faults says
                    for gate in self.driver.gates.values():
                        stack.enter_context(gate.held())
                proxy.down()
                time.sleep(seconds)
                proxy.up()
            return f"{kind} away {seconds} s"
        if kind == "poison":
            queues = consumer_queues(self.api, self.vhost)
            poison(self.amqp_uri, queues)
            self.poisoned += 2
            return f"poison and undecodable on {len(queues)} queues"
        return "none"

    def dead_letters(self):
        resp = requests.get(f"{self.api}/api/queues/{quote(self.vhost, safe='')}",
                            params={"columns": "name,messages"}, timeout=10)
        resp.raise_for_status()
        return {q["name"]: q.get("messages", 0) for q in resp.json()
                if q["name"].endswith(".dlq")}

    def sample_memory(self):
        at = round(time.monotonic() - self.started, 1)
        for name in SERVICES:
            pid = self.whole.platform.pid(name)
            self.memory[name].append((at, pid, rss_kib(pid)))

    # rounds
    def round(self, number):
        begun = time.monotonic()
        leads = funnel.plan(LEADS)
        kind = self.random.choice(FAULTS)
        errors = []

        def drive():
            try:
                self.driver.run(leads)
            except Exception as exc:  # noqa: BLE001 - reported, the soak goes on
                errors.append(repr(exc)[:500])

        driving = threading.Thread(target=drive)
        driving.start()
        time.sleep(self.random.uniform(0, ROUND_SECONDS / 3))
        fault = self.fault(kind)
        driving.join()
        self.leads.extend(leads)
        want = funnel.expected(self.leads, duplicates=3)
        wrong = funnel.differences(self.whole, want, self.since, timeout=60)
        lost = {str(k): v for k, v in wrong.items() if (v[0] or 0) < (v[1] or 0)}
        doubled = {str(k): v for k, v in wrong.items() if (v[0] or 0) > (v[1] or 0)}
        self.sample_memory()
        took = time.monotonic() - begun
        self.rounds.append({"round": number, "fault": fault, "leads": len(leads),
                            "seconds": round(took, 1), "driver_errors": errors,
                            "lost": lost, "doubled": doubled})
        print(f"soak round {number}: {fault}; {took:.0f} s; lost {len(lost)}, doubled "
              f"{len(doubled)}, errors {len(errors)}", flush=True)
        time.sleep(max(0.0, ROUND_SECONDS - took))  # the steady rate

    def run(self):
        self.sample_memory()
        number = 0
        while time.monotonic() - self.started < MINUTES * 60:
            number += 1
            self.round(number)
        return self.report()

    def report(self):
        twice = {str(k): n for k, n in self.events.sla.items() if n > 1}
        dead = self.dead_letters()
        growth = {}
        for name, samples in self.memory.items():
            # growth of the process running at the end (a kill -9 starts a new one)
            last_pid = samples[-1][1]
            values = [kib for _, pid, kib in samples if kib and pid == last_pid]
            growth[name] = {"first_kib": values[1] if len(values) > 1 else values[0],
                            "last_kib": values[-1], "max_kib": max(values),
                            "growth_kib": values[-1] - (values[1] if len(values) > 1
                                                        else values[0])} if values else None
        late = sum(1 for s in self.events.latencies if s > LATE_SECONDS)
        return {
            "seed": SEED, "minutes": MINUTES, "leads": len(self.leads),
            "rounds": self.rounds,
            "lost": sum(len(r["lost"]) for r in self.rounds),
            "doubled": sum(len(r["doubled"]) for r in self.rounds) + len(twice),
            "timers_fired_twice": twice,
            "driver_errors": sum(len(r["driver_errors"]) for r in self.rounds),
            "events": {"distinct": len(self.events.seen),
                       "redelivered": sum(n - 1 for n in self.events.seen.values()),
                       "late_over_seconds": LATE_SECONDS, "late": late,
                       "latency_histogram": self.events.histogram(),
                       "latency_p50": quantile(self.events.latencies, 0.5),
                       "latency_p99": quantile(self.events.latencies, 0.99),
                       "latency_max": max(self.events.latencies, default=None)},
            # a mail sent again under its Message-ID (at least once at the SMTP edge: a
            # kill -9 between the send and its record); counted once in lost/doubled
            "mail_resent": funnel.mail_resent(self.whole.mailpit),
            "dead_letters": {"expected_per_queue": self.poisoned,
                             "unexpected": {q: n for q, n in dead.items()
                                            if n != self.poisoned}},
            "memory": {"samples": self.memory, "growth": growth},
        }

    def close(self):
        try:
            self.events.close()
        finally:
            self.whole.stop()
            self.broker.stop()
            self.database.stop()
            requests.delete(f"{self.api}/api/vhosts/{self.vhost}", timeout=30)


def quantile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def markdown(report):
    ev = report["events"]
    lines = [
        f"# Soak report ({report['minutes']} min, seed {report['seed']})", "",
        f"- leads driven: {report['leads']} in {len(report['rounds'])} rounds",
        f"- lost: **{report['lost']}**, doubled: **{report['doubled']}** "
        f"(timers fired twice: {len(report['timers_fired_twice'])})",
        f"- driver errors: {report['driver_errors']}",
        f"- events: {ev['distinct']} distinct, {ev['redelivered']} redelivered "
        f"(at least once), {ev['late']} later than {ev['late_over_seconds']} s; "
        f"p50 {ev['latency_p50']} s, p99 {ev['latency_p99']} s, max {ev['latency_max']} s",
        f"- mails sent again under their Message-ID (at least once): {report['mail_resent']}",
        f"- dead letters other than the injected ones: {report['dead_letters']['unexpected']}",
        "", "## Event latency", "", "| bucket (s) | events |", "|---|---|",
        *[f"| {b} | {n} |" for b, n in ev["latency_histogram"].items()],
        "", "## Memory (RSS, KiB)", "", "| service | first | last | max | growth |",
        "|---|---|---|---|---|",
        *[f"| {name} | {g['first_kib']} | {g['last_kib']} | {g['max_kib']} | "
          f"{g['growth_kib']} |" for name, g in report["memory"]["growth"].items() if g],
        "", "## Rounds", "", "| round | fault | seconds | lost | doubled | errors |",
        "|---|---|---|---|---|---|",
        *[f"| {r['round']} | {r['fault']} | {r['seconds']} | {len(r['lost'])} | "
          f"{len(r['doubled'])} | {len(r['driver_errors'])} |" for r in report["rounds"]],
    ]
    return "\n".join(lines) + "\n"


def main():
    out = ROOT / "var"
    out.mkdir(exist_ok=True)
    soak = Soak(Path(tempfile.mkdtemp(prefix="soak-", dir=out)))
    try:
        report = soak.run()
    finally:
        soak.close()
    (out / "soak-report.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "soak-report.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if report["lost"] == report["doubled"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
