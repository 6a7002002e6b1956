"""Lead to KPI: how long after `POST /api/v1/leads` the lead is counted in the metrics
service's `/metrics` (`dealflow_leads_created_total`), p50/p99, at half the highest rate
the pipeline sustains; the anchor is nameko's bare event hop p99 (bench/raw.py).

A leads and a metrics service run on a vhost and databases of their own. First 10 clients
create leads as fast as they can; the pipeline's sustainable rate is those leads over the
time until the last of them is counted. Then leads are sent open-loop at half that rate
(each at its scheduled time, from a pool of threads, so a slow response does not delay the
next send) while a thread reads `/metrics` every POLL seconds. Leads are counted in about
the order they were sent, so the k-th lead sent is taken as counted when the count first
reaches k: its latency is that poll's time minus its scheduled send time (the poll adds up
to POLL plus one scrape).
"""
import queue
import threading
import time
import uuid

import requests

from bench.harness import bearer, percentile
from bench.metrics import own_vhost

# each poll is a scrape, which costs the metrics instance CPU: 50 ms keeps that small and
# bounds what it adds to a latency
POLL = 0.05
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
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self):
        with requests.Session() as session:
            while not self.stop.is_set():
                value = counted(self.url, session)
                self.seen.append((time.perf_counter(), value))
                time.sleep(POLL)

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


def open_loop(url, rate, seconds, clients=10):
    """Sends at `rate` per second for `seconds`; returns the scheduled send times of the
    leads created (201)."""
    work, sent, lock = queue.Queue(), [], threading.Lock()

    def worker():
        with requests.Session() as session:
            session.headers.update(bearer())
            while (item := work.get()) is not None:
                n, at = item
                if session.post(url + "/api/v1/leads", json=_lead(n),
                                timeout=30).status_code == 201:
                    with lock:
                        sent.append(at)

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


def run(ctx):
    _, amqp_uri = own_vhost(ctx)
    leads = ctx.start_service("leads", AMQP_URI=amqp_uri,
                              MONGO_DATABASE=ctx.new_database("pipeline_leads"),
                              LEADS_REP_CAP=1_000_000, LEADS_RESPONSE_MINUTES=60)
    metrics = ctx.start_service("metrics", AMQP_URI=amqp_uri,
                                MONGO_DATABASE=ctx.new_database("pipeline_metrics"))
    counts = Counts(metrics)
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
        sent = open_loop(leads, rate, STEADY_SECONDS)
        counts.wait_for(baseline + len(sent))
        lat = latencies(sent, counts.seen, baseline)
    finally:
        counts.close()
    return {"burst_created_per_s": burst["rps"],
            "sustainable_leads_per_s": round(sustainable, 1),
            "steady_rate_per_s": round(rate, 1), "steady_leads": len(sent),
            "lead_to_metrics_p50_ms": round(percentile(lat, 50) * 1000, 1),
            "lead_to_metrics_p99_ms": round(percentile(lat, 99) * 1000, 1)}
