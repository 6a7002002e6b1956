"""Metrics: events applied per second by one instance, and /metrics scrape latency after
1,000 and after 1,000,000 applied events.

- Throughput and the 1,000-event scrape use a real `nameko run` process fed over AMQP
  (catalog events published with batched confirms to `<service>.events`), on a vhost of
  this benchmark's own so no other bench's services consume (or add to) its events.
- For 1,000,000 events the aggregate state is seeded directly, NOT pushed through AMQP
  and FerretDB (that would take far beyond the bench's budget): synthetic entity
  projections (the documents the store writes) go through the same contribution and
  aggregation code in this process, and the same collector is scraped over HTTP from a
  small WSGI server here. The 1,000-event state is measured the same way, so
  `scrape_p99_ratio_1m_vs_1k` compares like with like (target: <= 2).
"""
import datetime as dt
import random
import threading
import time
import urllib.parse
import uuid
from decimal import Decimal
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import ROOT, free_port
from kit.amqp import ConfirmingPublisher
from kit.catalog import PRODUCER
from kit.config import load_config, setting
from kit.events import new_event
from metrics import domain
from metrics.live import KpiCollector

RATIOS = {"events_applied_per_s": "amqp_consume_ack_per_s"}
STAGES = ["discovery", "needs_confirmed", "proposal", "quote_negotiation", "contract_payment"]
SOURCES = ["web_form", "import", "api", "email", "referral", "event", "ads"]
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


# --- real events over AMQP -------------------------------------------------------------------


def journey(rng, n):
    """About ten catalog events of one lead and its deal."""
    lid, did = f"L{n}-{uuid.uuid4().hex[:8]}", f"D{n}-{uuid.uuid4().hex[:8]}"
    created = T0 + dt.timedelta(minutes=n)
    source = rng.choice(SOURCES)
    out = [new_event("lead.created", lid, {"lead_id": lid, "name": "x", "source": source,
                                           "score": 10, "grade": "C", "created_at": created},
                     1, time=created)]
    contacted = created + dt.timedelta(seconds=rng.randint(30, 7200))
    out.append(new_event("lead.contacted", lid, {
        "lead_id": lid, "source": source, "created_at": created, "contacted_at": contacted,
        "first_response_seconds": (contacted - created).total_seconds()}, 2, time=contacted))
    out.append(new_event("lead.qualified", lid, {"lead_id": lid, "source": source,
                                                 "score": 70, "grade": "A"}, 3))
    out.append(new_event("lead.converted", lid, {"lead_id": lid, "name": "x", "source": source,
                                                 "created_at": created,
                                                 "converted_at": contacted}, 4))
    amount = Decimal(rng.randrange(1000, 50000))
    out.append(new_event("deal.created", did, {
        "deal_id": did, "pipeline_id": "p", "stage": STAGES[0], "name": "x",
        "amount": amount, "currency": "EUR", "probability": 10, "lead_id": lid,
        "expected_close": dt.date(2024, rng.randint(1, 12), 1), "created_at": contacted}, 1))
    seq, stage = 1, STAGES[0]
    for nxt in STAGES[1:rng.randint(2, len(STAGES))]:
        seq += 1
        out.append(new_event("deal.stage_changed", did, {
            "deal_id": did, "pipeline_id": "p", "from_stage": stage, "to_stage": nxt,
            "probability": 20 * seq, "amount": amount, "currency": "EUR",
            "changed_at": contacted + dt.timedelta(days=seq)}, seq))
        stage = nxt
    if rng.random() < 0.5:
        out.append(new_event("deal.won", did, {
            "deal_id": did, "pipeline_id": "p", "from_stage": stage, "amount": amount,
            "currency": "EUR", "created_at": contacted,
            "won_at": contacted + dt.timedelta(days=9)}, seq + 1))
    return out


def events(count, seed):
    rng, out, n = random.Random(seed), [], 0
    while len(out) < count:
        out.extend(journey(rng, n + seed * 1_000_000))
        n += 1
    return out[:count]


def applied(url):
    text = requests.get(url + "/metrics", timeout=10).text
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples if s.name == "dealflow_events_applied_total")


def publish_and_wait(url, amqp_uri, bodies, already):
    publisher = ConfirmingPublisher(amqp_uri)
    started = time.perf_counter()
    try:
        for i in range(0, len(bodies), 500):
            publisher.publish_batch([(f"{PRODUCER[b['type']]}.events", b["type"], b, {})
                                     for b in bodies[i:i + 500]])
    finally:
        publisher.close()
    deadline = time.monotonic() + 120
    while applied(url) < already + len(bodies):
        if time.monotonic() > deadline:
            raise RuntimeError("events were not all applied in time")
        time.sleep(0.2)
    return time.perf_counter() - started


def own_vhost(ctx):
    """A vhost of this benchmark's own (other benches' services may still be running)."""
    name = f"bench_metrics_{uuid.uuid4().hex[:8]}"
    base, auth = ctx._api
    user = urllib.parse.urlsplit(ctx.amqp_uri).username or "guest"
    requests.put(f"{base}/api/vhosts/{name}", auth=auth, timeout=10).raise_for_status()
    requests.put(f"{base}/api/permissions/{name}/{user}", auth=auth, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    parts = urllib.parse.urlsplit(ctx.amqp_uri)
    return name, f"{parts.scheme}://{parts.netloc}/{name}"


# --- seeded aggregate state ------------------------------------------------------------------


def seeded_docs(total_events, seed=1):
    """Synthetic projections (the store's document shape) holding `total_events` facts."""
    rng = random.Random(seed)
    n = made = 0
    while made < total_events:
        created = T0 + dt.timedelta(seconds=n)
        lid, did = f"L{n}", f"D{n}"
        facts = [{"id": f"{lid}-1", "type": "lead.created", "seq": 1, "time": created,
                  "source": rng.choice(SOURCES), "created_at": created},
                 {"id": f"{lid}-2", "type": "lead.contacted", "seq": 2, "time": created,
                  "created_at": created, "contacted_at": created,
                  "first_response_seconds": float(rng.randint(30, 7200))},
                 {"id": f"{lid}-3", "type": "lead.converted", "seq": 3, "time": created,
                  "created_at": created, "converted_at": created}]
        yield "leads", {"_id": lid, "rev": 3, "facts": facts}
        reached = rng.randint(0, len(STAGES) - 1)
        facts = [{"id": f"{did}-1", "type": "deal.created", "seq": 1, "time": created,
                  "stage": STAGES[0], "amount": str(rng.randrange(1000, 50000)),
                  "currency": rng.choice(["EUR", "USD"]), "probability": 10,
                  "expected_close": f"2024-{rng.randint(1, 12):02d}-01", "lead_id": lid,
                  "created_at": created}]
        for i in range(1, reached + 1):
            facts.append({"id": f"{did}-{i + 1}", "type": "deal.stage_changed", "seq": i + 1,
                          "time": created, "from_stage": STAGES[i - 1], "to_stage": STAGES[i],
                          "amount": facts[0]["amount"], "currency": facts[0]["currency"],
                          "probability": 20 * i, "expected_close": facts[0]["expected_close"],
                          "changed_at": created})
        if rng.random() < 0.3:
            facts.append({"id": f"{did}-w", "type": "deal.won", "seq": len(facts) + 1,
                          "time": created, "from_stage": STAGES[reached],
                          "created_at": created, "won_at": created + dt.timedelta(days=30)})
        yield "deals", {"_id": did, "rev": len(facts), "facts": facts}
        made += 3 + len(facts)
        n += 1


class _Live:
    """What KpiCollector reads of a LiveKpis: rules, aggregate state, readiness."""

    def __init__(self, rules):
        self.rules = rules
        self.state = domain.Aggregates()
        self.ready = True


def seeded_scrape(ctx, rules, total_events):
    live = _Live(rules)
    started = time.perf_counter()
    for kind, doc in seeded_docs(total_events):
        live.state.replace(kind, doc["_id"], doc["rev"], domain.contribution(kind, doc, rules))
    seeded_s = time.perf_counter() - started
    registry = CollectorRegistry(auto_describe=True)
    registry.register(KpiCollector(live))

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4")])
        return [generate_latest(registry)]

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    port = free_port()
    server = make_server("127.0.0.1", port, app, WSGIServer, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        load = ctx.http_load("GET", f"http://127.0.0.1:{port}/metrics", clients=1,
                             duration=3.0)
    finally:
        server.shutdown()
        server.server_close()
    return load, seeded_s, sum(len(e) for e in live.state.entities.values())


def run(ctx):
    out = {}
    vhost, amqp_uri = own_vhost(ctx)
    base, auth = ctx._api
    try:
        url = ctx.start_service("metrics", AMQP_URI=amqp_uri, KPIS_REFRESH_SECONDS=5)
        publish_and_wait(url, amqp_uri, events(1_000, seed=1), 0)
        scrape = ctx.http_load("GET", url + "/metrics", clients=1, duration=3.0)
        out["service_scrape_p50_ms_at_1k"] = scrape["p50_ms"]
        out["service_scrape_p99_ms_at_1k"] = scrape["p99_ms"]
        n = 1_500  # FerretDB-bound: ~40-60 events/s here, and the bench must stay short
        elapsed = publish_and_wait(url, amqp_uri, events(n, seed=2), 1_000)
        out["events_applied_per_s"] = round(n / elapsed, 1)
    finally:
        requests.delete(f"{base}/api/vhosts/{vhost}", auth=auth, timeout=10)

    rules = domain.Rules.from_config(setting(load_config(
        ROOT / "services" / "metrics" / "config.yml"), "KPIS"))
    small, _, _ = seeded_scrape(ctx, rules, 1_000)
    big, seeded_s, entities = seeded_scrape(ctx, rules, 1_000_000)
    out["seeded_scrape_p50_ms_at_1k"] = small["p50_ms"]
    out["seeded_scrape_p99_ms_at_1k"] = small["p99_ms"]
    out["seeded_scrape_p50_ms_at_1m"] = big["p50_ms"]
    out["seeded_scrape_p99_ms_at_1m"] = big["p99_ms"]
    out["scrape_p99_ratio_1m_vs_1k"] = round(big["p99_ms"] / small["p99_ms"], 2)
    out["seeded_entities_at_1m"] = entities
    out["seed_aggregate_events_per_s"] = round(1_000_000 / seeded_s)
    return out
