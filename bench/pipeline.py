"""Lead to KPI: how long after `POST /api/v1/leads` the lead is counted in the metrics
service's `/metrics` (`dealflow_leads_created_total`), p50/p99, at half the highest rate
the pipeline sustains; the anchor is nameko's bare event hop p99 (bench/raw.py).

A leads and a metrics service run on a vhost and databases of their own. First 10 clients
create leads as fast as they can; the pipeline's sustainable rate is those leads over the
time until the last of them is counted. Then leads are sent open-loop at half that rate
(each at its scheduled time, from a pool of threads, so a slow response does not delay the
next send) while a thread reads `/metrics`: every POLL_FAST seconds while a lead sent is not
counted yet, else every POLL seconds. Leads are counted in about the order they were sent,
so the k-th lead sent is taken as counted when the count first reaches k: its latency is
the end of that poll minus its scheduled send time (the poll adds up to POLL_FAST plus one
scrape).

The path is broken down per lead with the clocks of this machine (`breakdown_*`, p50 and
p99 of each step): the POST's response; the lead's write (its `created_at`); its
`lead.created` reaching a queue of this bench's own bound beside metrics' (the relay's
publish with confirms and the broker's delivery); the projection's write in metrics
(`updated_at`, stamped as the batch's write begins: the batch linger and the wait for a
worker are before it); the poll that first counted it.
"""
import json
import queue
import threading
import time
import uuid

import requests
from kombu import Connection, Exchange, Queue
from pymongo import MongoClient

from bench.harness import bearer, percentile
from bench.metrics import own_vhost

# each poll is a scrape, which costs the metrics instance CPU (~2 ms of rendering): polls
# come fast only while a lead is on its way (their interval bounds what they add to a
# latency), and slowly otherwise
POLL = 0.05
POLL_FAST = 0.01
BURST_SECONDS = 4.0
STEADY_SECONDS = 8.0
RATIOS = {"lead_to_metrics_p99_ms": "hop_p99_ms"}


def counted(url, session):
    text = session.get(url + "/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("dealflow_leads_created_total{"))


class Counts:
    """Polls the lead count in the background: [(time, count)]."""

    def __init__(self, url):
        self.url, self.seen, self.stop = url, [], threading.Event()
        self.expected = 0  # leads sent so far: fewer counted means one is on its way
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self):
        with requests.Session() as session:
            while not self.stop.is_set():
                value = counted(self.url, session)
                self.seen.append((time.perf_counter(), value))
                time.sleep(POLL_FAST if value < self.expected else POLL)

    def wait_for(self, total, timeout=120):
        deadline = time.monotonic() + timeout
        while not self.seen or self.seen[-1][1] < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.seen[-1][1] if self.seen else 0} of {total} "
                                   "leads counted")
            time.sleep(POLL)
        return next(t for t, value in self.seen if value >= total)

    def close(self):
        self.stop.set()
        self.thread.join()


class Arrivals:
    """When each `lead.created` reached a queue of this bench's own (wall clock), by lead."""

    def __init__(self, amqp_uri):
        self.at, self.stop = {}, threading.Event()
        self.conn = Connection(amqp_uri)
        self.queue = Queue(f"bench-pipeline-{uuid.uuid4().hex[:8]}", durable=False,
                           exclusive=True, routing_key="lead.created",
                           exchange=Exchange("leads.events", type="topic", durable=True))
        self.consumer = self.conn.Consumer([self.queue], on_message=self._on_message,
                                           no_ack=True)
        self.consumer.consume()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _on_message(self, message):
        self.at.setdefault(json.loads(message.body)["subject"], time.time())

    def _drain(self):
        while not self.stop.is_set():
            try:
                self.conn.drain_events(timeout=0.2)
            except TimeoutError:
                pass

    def close(self):
        self.stop.set()
        self.thread.join()
        self.conn.release()


def _lead(n):
    return {"name": f"Pipeline {n}", "email": f"pipe-{n}-{uuid.uuid4().hex[:6]}@example.com",
            "company": "Pipeline GmbH", "country": "DE", "source": "web_form"}


def latencies(sent, seen, baseline):
    """Per lead: from its send time to the first count that includes it (count order)."""
    out, i = [], 0
    for k, at in enumerate(sorted(sent)):
        while i < len(seen) and seen[i][1] < baseline + k + 1:
            i += 1
        if i == len(seen):
            break
        out.append(seen[i][0] - at)
    return out


def open_loop(url, rate, seconds, clients=10, created=None, counts=None):
    """Sends at `rate` per second for `seconds`; returns the scheduled send times of the
    leads created (201). `created`, a list, gets (scheduled time, lead id, response time)
    of each; `counts` learns of each lead sent."""
    work, sent, lock = queue.Queue(), [], threading.Lock()

    def worker():
        with requests.Session() as session:
            session.headers.update(bearer())
            while (item := work.get()) is not None:
                n, at = item
                if counts is not None:
                    with lock:
                        counts.expected += 1
                resp = session.post(url + "/api/v1/leads", json=_lead(n), timeout=30)
                if resp.status_code == 201:
                    answered = time.perf_counter()
                    with lock:
                        sent.append(at)
                        if created is not None:
                            created.append((at, resp.json()["id"], answered))
                elif counts is not None:
                    with lock:
                        counts.expected -= 1  # never counted: no reason to poll fast

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start, n = time.perf_counter(), 0
    while (at := start + n / rate) < start + seconds:
        time.sleep(max(0.0, at - time.perf_counter()))
        work.put((n, at))
        n += 1
    for _ in threads:
        work.put(None)
    for thread in threads:
        thread.join()
    return sent


def breakdown(ctx, created, seen, baseline, arrivals, leads_db, metrics_db):
    """p50/p99 ms of each step of the path, per lead (see the module's docstring)."""
    wall = time.time() - time.perf_counter()  # perf_counter -> wall clock
    ids = [lead_id for _, lead_id, _ in created]
    client = MongoClient(ctx.mongo_uri, tz_aware=True)
    try:
        written = {d["_id"]: d["created_at"].timestamp() for d in client[leads_db].leads.find(
            {"_id": {"$in": ids}}, {"created_at": 1})}
        projected = {d["_id"]: d["updated_at"].timestamp() for d in client[metrics_db].leads
                     .find({"_id": {"$in": ids}}, {"updated_at": 1})}
    finally:
        client.close()
    counted = dict(zip(sorted(created), latencies([c[0] for c in created], seen, baseline),
                       strict=False))
    steps = {"send_to_written": [], "written_to_answered": [], "written_to_delivered": [],
             "delivered_to_projected": [], "projected_to_counted": []}
    for item in created:
        at, lead_id, answered = item
        if lead_id not in written or lead_id not in projected or lead_id not in arrivals.at \
                or item not in counted:
            continue
        w, d, p = written[lead_id], arrivals.at[lead_id], projected[lead_id]
        steps["send_to_written"].append(w - (at + wall))
        steps["written_to_answered"].append(answered + wall - w)
        steps["written_to_delivered"].append(d - w)
        steps["delivered_to_projected"].append(p - d)
        steps["projected_to_counted"].append(at + wall + counted[item] - p)
    out = {}
    for step, values in steps.items():
        out[f"breakdown_{step}_p50_ms"] = round(percentile(values, 50) * 1000, 1)
        out[f"breakdown_{step}_p99_ms"] = round(percentile(values, 99) * 1000, 1)
    return out


def run(ctx):
    _, amqp_uri = own_vhost(ctx)
    leads_db, metrics_db = ctx.new_database("pipeline_leads"), ctx.new_database("pipeline_metrics")
    leads = ctx.start_service("leads", AMQP_URI=amqp_uri, MONGO_DATABASE=leads_db,
                              LEADS_REP_CAP=1_000_000, LEADS_RESPONSE_MINUTES=60)
    metrics = ctx.start_service("metrics", AMQP_URI=amqp_uri, MONGO_DATABASE=metrics_db)
    counts = Counts(metrics)
    arrivals = Arrivals(amqp_uri)
    try:
        warm = open_loop(leads, 20, 1.0)  # queues, connections, first projections
        counts.wait_for(len(warm))
        started = time.perf_counter()
        burst = ctx.http_load("POST", leads + "/api/v1/leads", clients=10,
                              duration=BURST_SECONDS, json_fn=lambda i, t: _lead(f"b{i}"),
                              ok=(201,))
        created_total = counts.wait_for(len(warm) + burst["requests"])
        sustainable = burst["requests"] / (created_total - started)
        baseline = counts.seen[-1][1]
        rate = sustainable / 2
        created = []
        counts.expected = baseline
        sent = open_loop(leads, rate, STEADY_SECONDS, created=created, counts=counts)
        counts.wait_for(baseline + len(sent))
        lat = latencies(sent, counts.seen, baseline)
    finally:
        counts.close()
        arrivals.close()
    return {"burst_created_per_s": burst["rps"],
            "sustainable_leads_per_s": round(sustainable, 1),
            "steady_rate_per_s": round(rate, 1), "steady_leads": len(sent),
            "lead_to_metrics_p50_ms": round(percentile(lat, 50) * 1000, 1),
            "lead_to_metrics_p99_ms": round(percentile(lat, 99) * 1000, 1),
            **breakdown(ctx, created, counts.seen, baseline, arrivals, leads_db, metrics_db)}
