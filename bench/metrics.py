"""Metrics: events applied per second by one instance, and /metrics scrape latency after
1,000 and after 1,000,000 applied events.

- Throughput and the 1,000-event scrape use a real `nameko run` process fed over AMQP
  (catalog events published with batched confirms to `<service>.events`), on a vhost of
  this benchmark's own so no other bench's services consume (or add to) its events.
- Restart: for 1,000 and 1,000,000 events (100,000 leads, 20,000 deals), the projections
  are written to a database of their own as the store writes them, with the snapshot an
  instance would have written of them, then some projections change after it (the
  catch-up a restart must do); a real `nameko run` starts on that database and the time
  until `dealflow_metrics_projections_loaded 1` is measured, its scrape compared with the
  expected exposition, and `GET /api/v1/funnel` timed on that state (a 30-day window and
  a whole year) and checked against domain.cohort_funnel over the window's projections.
- For 1,000,000 events the aggregate state is seeded directly, NOT pushed through AMQP
  and FerretDB (that would take far beyond the bench's budget): synthetic entity
  projections (the documents the store writes) go through the same contribution and
  aggregation code in this process, and the same collector is scraped over HTTP from a
  small WSGI server here. The 1,000-event state is measured the same way, so
  `scrape_p99_ratio_1m_vs_1k` compares like with like (target: <= 2).
"""
import datetime as dt
import json
import os
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
from pymongo import MongoClient

from bench.harness import ROOT, TICKS, CpuUse, DbOps, bearer, cpu_seconds, free_port
from kit.amqp import ConfirmingPublisher
from kit.catalog import PRODUCER
from kit.config import load_config, setting
from kit.events import new_event, parse_event
from kit.fields import utcnow
from kit.streams import stream_declarer
from metrics import domain, snapshot
from metrics.cohorts import Cohorts
from metrics.live import KpiCollector
from metrics.rebuild import Rebuild
from metrics.store import MetricsStore

RATIOS = {"events_applied_per_s": "hop_events_per_s",
          "events_applied_per_s_2": "hop_events_per_s",
          "db_write_ops_per_s": "mongo_update_by_id_per_s",
          "db_write_ops_per_s_2": "mongo_update_by_id_per_s"}
# events per throughput phase (ROUNDS of each kind): a two-instance phase ends when both
# instances' KPIs count every event, so the last refresh's lag is a share of it that
# shrinks with its length
THROUGHPUT_EVENTS = int(os.environ.get("BENCH_METRICS_EVENTS", 2_500))
ROUNDS = 2  # of each: one instance, two instances
# how often an idle instance looks for what other instances applied; while they write, it
# follows every KPIS.refresh_busy_seconds (0.1 s)
REFRESH_SECONDS = 0.5
POLL_SECONDS = 0.25
# near the end of a phase (every instance past NEAR_END of the events) the polls come this
# often, so the phase's end is seen within it rather than within POLL_SECONDS
POLL_FAST_SECONDS = 0.05
NEAR_END = 0.97
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


def publish(amqp_uri, bodies):
    # as the producers publish: into their streams too (the replay below reads them)
    publisher = ConfirmingPublisher(amqp_uri, on_declare=stream_declarer({}))
    try:
        for i in range(0, len(bodies), 500):
            publisher.publish_batch([(f"{PRODUCER[b['type']]}.events", b["type"], b, {})
                                     for b in bodies[i:i + 500]])
    finally:
        publisher.close()


def publish_and_wait(url, amqp_uri, bodies, already):
    started = time.perf_counter()
    publish(amqp_uri, bodies)
    wait_applied([url], already + len(bodies), timeout=120)
    return time.perf_counter() - started


def own_vhost(ctx):
    """A vhost of this benchmark's own (other benches' services may still be running)."""
    name = f"bench_metrics_{uuid.uuid4().hex[:8]}"
    base, auth = ctx._api
    user = urllib.parse.urlsplit(ctx.amqp_uri).username or "guest"
    requests.put(f"{base}/api/vhosts/{name}", auth=auth, timeout=10).raise_for_status()
    requests.put(f"{base}/api/permissions/{name}/{user}", auth=auth, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    ctx.vhosts.append(name)
    parts = urllib.parse.urlsplit(ctx.amqp_uri)
    return name, f"{parts.scheme}://{parts.netloc}/{name}"


# --- seeded aggregate state ------------------------------------------------------------------


def seeded_docs(total_events, seed=1):
    """Synthetic projections (the store's document shape) holding `total_events` facts:
    per 5 leads (8 facts each: created, assigned, contacted, follow-ups, qualified,
    converted or disqualified) one deal of 10 facts (stage moves, updates, won or lost,
    some reopened, one in ten in a custom pipeline), created over a year; so 1,000,000
    events are 100,000 leads and 20,000 deals."""
    rng = random.Random(seed)
    n = made = 0
    step = dt.timedelta(days=365) / max(total_events / 10, 1)  # ten events per lead
    while made < total_events:
        created = T0 + n * step + dt.timedelta(seconds=rng.randrange(0, 3600))
        lid = f"L{n}"
        answered = created + dt.timedelta(seconds=rng.randint(30, 7200))
        qualified = answered + dt.timedelta(hours=rng.randint(1, 96))
        converted = n % 5 == 0
        facts = [{"type": "lead.created", "status": "new", "source": rng.choice(SOURCES),
                  "created_at": created},
                 {"type": "lead.assigned", "status": "new"},
                 {"type": "lead.contacted", "status": "contacted", "created_at": created,
                  "contacted_at": answered,
                  "first_response_seconds": (answered - created).total_seconds()},
                 {"type": "lead.followup_due"}, {"type": "lead.followup_due"},
                 {"type": "lead.followup_due"},
                 {"type": "lead.qualified", "status": "qualified"},
                 {"type": "lead.converted", "status": "converted", "created_at": created,
                  "converted_at": qualified + dt.timedelta(hours=1)} if converted else
                 {"type": "lead.disqualified", "status": "disqualified", "reason": "timing"}]
        for i, fact in enumerate(facts):
            fact.update(id=f"{lid}-{i}", seq=i + 1, time=created + i * dt.timedelta(hours=1))
        yield "leads", {"_id": lid, "rev": len(facts), "facts": facts}
        made += len(facts)
        if converted:
            did = f"D{n}"
            opened = qualified + dt.timedelta(hours=1)
            pipeline = "custom" if n % 50 == 0 else "default"
            amount = str(rng.randrange(1000, 50000))
            common = {"pipeline_id": pipeline, "amount": amount, "currency": rng.choice(
                ["EUR", "USD", "CNY"]), "expected_close": f"2024-{rng.randint(1, 12):02d}-01"}
            facts = [{"type": "deal.created", "stage": STAGES[0], "probability": 10,
                      "lead_id": lid, "origin": "lead", "created_at": opened, **common}]
            stage, at = STAGES[0], opened
            for nxt in STAGES[1:rng.randint(2, len(STAGES))]:
                at += dt.timedelta(days=rng.randint(1, 9))
                facts.append({"type": "deal.stage_changed", "from_stage": stage,
                              "to_stage": nxt, "probability": 20, "changed_at": at, **common})
                stage = nxt
            while len(facts) < 9:
                facts.append({"type": "deal.updated", "stage": stage, "probability": 30,
                              **common})
            won = rng.random() < 0.5
            reopened = not won and rng.random() < 0.2 and facts[-1]["type"] == "deal.updated"
            if reopened:
                facts.pop()  # keeps ten facts: the reopening move comes after the loss
            at += dt.timedelta(days=3)
            facts.append({"type": "deal.won" if won else "deal.lost", "from_stage": stage,
                          "pipeline_id": pipeline, "created_at": opened,
                          ("won_at" if won else "lost_at"): at, "reason": "price"})
            if reopened:
                facts.append({"type": "deal.stage_changed", "from_stage": "lost",
                              "to_stage": STAGES[2], "changed_at": at + dt.timedelta(days=1),
                              **common})
            for i, fact in enumerate(facts):
                fact.update(id=f"{did}-{i}", seq=i + 1, time=opened)
            yield "deals", {"_id": did, "rev": len(facts), "facts": facts}
            made += len(facts)
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


# --- restart from a snapshot ------------------------------------------------------------------


def _stored(kind, doc, written):
    """The projection as the store keeps it: applied ids, index fields, updated_at."""
    out = {**doc, "applied": [f["id"] for f in doc["facts"]], "updated_at": written}
    if kind == "leads":
        out["created_at"] = min(f["created_at"] for f in doc["facts"] if f.get("created_at"))
    elif doc["facts"][0].get("lead_id"):
        out["lead_id"] = doc["facts"][0]["lead_id"]
    return out


def seed_restart(ctx, rules, config, total_events, changed_after):
    """A database holding the projections of `total_events`, the snapshot an instance
    would have written of them, and `changed_after` lead projections changed after it.
    Returns (database name, expected live state, seeding figures)."""
    bucket_seconds = float(setting(config, "KPIS.cohort_bucket_seconds"))
    name = ctx.new_database("metrics")
    client = MongoClient(ctx.mongo_uri, tz_aware=True)
    store = MetricsStore(client[name])
    store.ensure_indexes()
    live = _Live(rules)
    codec = snapshot.Codec()
    live.state = domain.Aggregates(decode=codec.decode)
    cohorts = Cohorts(rules, bucket_seconds)
    written = utcnow() - dt.timedelta(minutes=10)
    started = time.perf_counter()
    batches = {"leads": [], "deals": []}
    leads = []
    for kind, doc in seeded_docs(total_events):
        live.state.replace(kind, doc["_id"], doc["rev"], domain.contribution(kind, doc, rules))
        cohorts.absorb(kind, doc)
        if kind == "leads":
            leads.append((doc["_id"], doc["rev"]))
        batch = batches[kind]
        batch.append(_stored(kind, doc, written))
        if len(batch) >= 1000:
            store.db[kind].insert_many(batch, ordered=False)
            batch.clear()
    for kind, batch in batches.items():
        if batch:
            store.db[kind].insert_many(batch, ordered=False)
    seeded_s = time.perf_counter() - started
    watermark = written + dt.timedelta(seconds=1)
    started = time.perf_counter()
    blob = snapshot.encode(snapshot.capture(live.state, cohorts), codec, watermark,
                           snapshot.fingerprint(rules, bucket_seconds))
    store.write_snapshot(blob, snapshot.checksum(blob), watermark, utcnow(),
                         int(setting(config, "KPIS.snapshot_chunk_bytes")))
    snapshot_s = time.perf_counter() - started
    started = time.perf_counter()
    decoded = snapshot.decode(store.read_snapshot()[0],
                              snapshot.fingerprint(rules, bucket_seconds), rules,
                              bucket_seconds)
    read_s = time.perf_counter() - started
    assert decoded[0].values == live.state.values
    rng = random.Random(total_events)
    for lead_id, rev in rng.sample(leads, min(changed_after, len(leads))):
        # a follow-up applied after the snapshot, as the store applies any event
        kind, doc, _ = store.apply({"id": f"{lead_id}-after", "type": "lead.followup_due",
                                    "sequence": rev + 1, "time": utcnow(),
                                    "data": {"lead_id": lead_id}})
        live.state.replace(kind, doc["_id"], doc["rev"], domain.contribution(kind, doc, rules))
        cohorts.absorb(kind, doc)
    client.close()
    return name, live, {"snapshot_bytes": len(blob), "seed_projections_s": round(seeded_s, 1),
                        "snapshot_encode_write_s": round(snapshot_s, 2),
                        "snapshot_read_decode_s": round(read_s, 2)}


def kpi_samples(text, names):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) if family.name in names
            for s in family.samples}


def restart(ctx, rules, config, total_events, changed_after=200):
    name, live, figures = seed_restart(ctx, rules, config, total_events, changed_after)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(KpiCollector(live))
    expected_text = generate_latest(registry).decode()
    names = {f.name for f in text_string_to_metric_families(expected_text)
             if f.name != "dealflow_metrics_projections_loaded"}
    expected = kpi_samples(expected_text, names)
    started = time.perf_counter()
    url = ctx.start_service("metrics", MONGO_DATABASE=name, LOG_LEVEL="INFO")
    deadline = time.monotonic() + 600
    while True:
        text = requests.get(url + "/metrics", timeout=30).text
        if "dealflow_metrics_projections_loaded 1.0" in text:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("metrics did not restore its KPIs in time")
        time.sleep(0.05)
    figures["restart_to_ready_s"] = round(time.perf_counter() - started, 2)
    figures["restart_scrape_matches"] = kpi_samples(text, names) == expected
    # the service's own account of the restore: snapshot read, decode, catch-up query
    port = urllib.parse.urlsplit(url).port
    for line in (ROOT / "var" / "log" / f"bench-metrics-{port}.log").read_text().splitlines():
        if "KPIs restored from a snapshot" in line:
            phases = json.loads(line)
            for phase in ("read_s", "decode_s", "catch_up_s", "caught_up"):
                figures[f"restore_{phase}"] = phases[phase]
    return url, name, figures


def funnel_figures(ctx, url, db_name, rules, year):
    """GET /api/v1/funnel over 30 days and over the whole year (edges off the day
    boundaries), and the 30 days checked against the computation from the projections."""
    month = (T0 + dt.timedelta(days=180, hours=7), T0 + dt.timedelta(days=210, hours=13))
    whole = (T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=year + 60))
    out = {}
    for label, (start, end) in (("30d", month), ("year", whole)):
        params = urllib.parse.urlencode({"from": start.isoformat(), "to": end.isoformat()})
        load = ctx.http_load("GET", f"{url}/api/v1/funnel?{params}", clients=1, duration=3.0)
        out[f"funnel_p50_ms_{label}"] = load["p50_ms"]
        out[f"funnel_p99_ms_{label}"] = load["p99_ms"]
    params = {"from": month[0].isoformat(), "to": month[1].isoformat()}
    got = requests.get(url + "/api/v1/funnel", params=params, timeout=30,
                       headers=bearer()).json()
    client = MongoClient(ctx.mongo_uri, tz_aware=True)
    started = time.perf_counter()
    leads, deals = MetricsStore(client[db_name]).cohort(*month)
    want = domain.cohort_funnel(leads, deals, rules)
    out["funnel_old_path_s_30d"] = round(time.perf_counter() - started, 2)
    client.close()
    out["funnel_30d_leads"] = got["leads"]
    out["funnel_matches_projections"] = all(
        got[k] == want[k] for k in ("leads", "stages", "transitions", "overall_conversion_rate"))
    return out


def restarts(ctx, rules, config):
    out = {}
    for label, total in (("1k", 1_000), ("1m", 1_000_000)):
        url, name, figures = restart(ctx, rules, config, total)
        for key_, value in figures.items():
            out[f"{key_}_at_{label}"] = value
        if label == "1m":
            for key_, value in funnel_figures(ctx, url, name, rules, 365).items():
                out[f"{key_}_at_100k_leads"] = value
    out["restart_ratio_1m_vs_1k"] = round(out["restart_to_ready_s_at_1m"]
                                          / out["restart_to_ready_s_at_1k"], 2)
    return out


def expected_kpis(bodies, rules):
    """The KPI samples that applying `bodies` (each once) must give, computed here: each
    event parsed as the consumer parses it, folded into its entity's projection as the
    store folds it, and the projections aggregated by the service's own domain code."""
    docs = {}
    for body in bodies:
        envelope, data = parse_event(body)
        kind, entity_id, fact = domain.fact_from_event({**envelope, "data": data})
        doc = docs.setdefault((kind, entity_id), {"_id": entity_id, "rev": 0, "facts": []})
        doc["facts"].append(fact)
        doc["rev"] += 1
    live = _Live(rules)
    for (kind, entity_id), doc in docs.items():
        live.state.replace(kind, entity_id, doc["rev"], domain.contribution(kind, doc, rules))
    registry = CollectorRegistry(auto_describe=True)
    registry.register(KpiCollector(live))
    text = generate_latest(registry).decode()
    names = {f.name for f in text_string_to_metric_families(text)
             if f.name not in ("dealflow_metrics_projections_loaded",
                               "dealflow_metrics_projections")}
    return names, kpi_samples(text, names)


def wait_applied(urls, total, timeout=300, start=0):
    """Until every instance's KPIs count `total` applied events (another instance's
    applications reach an instance's KPIs with its next refresh); returns, per instance,
    when (perf_counter) its count was first seen complete."""
    deadline = time.monotonic() + timeout
    done = {}
    while len(done) < len(urls):
        if time.monotonic() > deadline:
            raise RuntimeError(f"events were not all applied in time: {total} wanted, "
                               f"{ {url: applied(url) for url in urls} }")
        counts = {}
        for url in urls:
            if url not in done:
                counts[url] = applied(url)
                if counts[url] >= total:
                    done[url] = time.perf_counter()
        if len(done) == len(urls):
            break
        # a scrape costs the instance several ms of its CPU (py-spy: polling every 50 ms
        # took a fifth of its samples), so poll gently until the end is near
        near = all(c >= start + NEAR_END * (total - start) for c in counts.values())
        time.sleep(POLL_FAST_SECONDS if near else POLL_SECONDS)
    return [done[url] for url in urls]


def exact(urls, names, expected):
    return all(kpi_samples(requests.get(url + "/metrics", timeout=10).text, names) == expected
               for url in urls)


def machine_busy():
    """(busy, total) CPU seconds of the whole machine, all cores, from /proc/stat."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks) - idle) / TICKS, sum(ticks) / TICKS


def _phase(ctx, amqp_uri, urls, batch, sent, profile):
    """Publish `batch` and wait until every instance counts it: (events, seconds, figures)."""
    ops = DbOps(ctx.mongo_uri)
    pids = [*(ctx.pid_of(url) for url in urls), ctx.database_pid]
    cpu = CpuUse(pids)
    seconds_before = [cpu_seconds(pid) for pid in pids]
    busy_before = machine_busy()
    with ctx.profiling(profile, urls[0], len(batch) / 200):
        started = time.perf_counter()
        publish(amqp_uri, batch)
        done = wait_applied(urls, len(sent) + len(batch), start=len(sent))
        elapsed = max(done) - started
    busy_after = machine_busy()
    seconds_after = [cpu_seconds(pid) for pid in pids]
    db = ops.per_second(elapsed)
    used, load = cpu.percent()
    ms = [None if a is None or b is None else 1000 * (b - a) / len(batch)
          for a, b in zip(seconds_before, seconds_after, strict=True)]
    return elapsed, {"db_ops": db["ops"] * elapsed, "db_writes": db["writes"] * elapsed,
                     "db_reads": db["reads"] * elapsed,
                     "cpu": used[:-1], "database_cpu": used[-1], "load": load,
                     # all cores of the machine: what every process here (and any other
                     # work on it) used of them while the phase ran
                     "machine_cpu": 100 * (busy_after[0] - busy_before[0])
                     / (busy_after[1] - busy_before[1]),
                     "instances_ms": sum(m for m in ms[:-1] if m is not None),
                     "database_ms": ms[-1],
                     # how long after the first instance the last one counted every event:
                     # the lag with which an instance learns of the others' writes
                     "behind": max(done) - min(done)}


def scale_out(ctx, amqp_uri, rules, out):
    """Events applied per second by one instance and by two on the same vhost and
    database, in turns (1, 2, 1, 2: the machine's load drifts alike for both; the second
    instance starts before each of its phases and stops after), each phase checked
    against the KPIs computed from the events themselves."""
    env = {"AMQP_URI": amqp_uri, "KPIS_REFRESH_SECONDS": REFRESH_SECONDS}
    first = ctx.start_service("metrics", **env)
    warm = events(1_000, seed=1)
    publish_and_wait(first, amqp_uri, warm, 0)
    scrape = ctx.http_load("GET", first + "/metrics", clients=1, duration=3.0)
    out["service_scrape_p50_ms_at_1k"] = scrape["p50_ms"]
    out["service_scrape_p99_ms_at_1k"] = scrape["p99_ms"]
    sent = list(warm)
    phases = {"": [], "_2": []}
    exactness = {"": True, "_2": True}
    seeds = iter(range(2, 2 + 2 * ROUNDS))
    for n in range(ROUNDS):
        for suffix in ("", "_2"):
            urls = [first]
            if suffix:
                urls.append(ctx.start_service("metrics", **env))
                wait_applied(urls, len(sent))
            batch = events(THROUGHPUT_EVENTS, seed=next(seeds))
            profile = "metrics-apply" if suffix == "" and n == 0 else None
            elapsed, figures = _phase(ctx, amqp_uri, urls, batch, sent, profile)
            sent.extend(batch)
            names, expected = expected_kpis(sent, rules)
            exactness[suffix] = exactness[suffix] and exact(urls, names, expected)
            phases[suffix].append((len(batch), elapsed, figures))
            if suffix:
                ctx.stop(urls[1])
    for suffix, runs in phases.items():
        count = sum(r[0] for r in runs)
        seconds = sum(r[1] for r in runs)
        out[f"events_applied_per_s{suffix}"] = round(count / seconds, 1)
        out[f"events_applied_per_s_by_round{suffix}"] = [round(r[0] / r[1], 1) for r in runs]
        out[f"kpis_exact{suffix}"] = exactness[suffix]
        out[f"db_ops_per_s{suffix}"] = round(sum(r[2]["db_ops"] for r in runs) / seconds)
        out[f"db_write_ops_per_s{suffix}"] = round(sum(r[2]["db_writes"] for r in runs)
                                                   / seconds)
        out[f"cpu_percent_by_instance{suffix}"] = [r[2]["cpu"] for r in runs]
        out[f"database_cpu_percent{suffix}"] = [r[2]["database_cpu"] for r in runs]
        out[f"load_average{suffix}"] = [r[2]["load"] for r in runs]
        # What bounds the phase on a machine of few cores: the share of all its cores in
        # use, and the CPU each event cost the instances together and the database (a
        # second instance adds work: it reads and takes in the projections the other one
        # writes, and an entity's events split between the two take more writes)
        out[f"machine_cpu_percent{suffix}"] = [round(r[2]["machine_cpu"]) for r in runs]
        out[f"instances_cpu_ms_per_event{suffix}"] = round(
            sum(r[2]["instances_ms"] * r[0] for r in runs) / count, 3)
        if all(r[2]["database_ms"] is not None for r in runs):
            out[f"database_cpu_ms_per_event{suffix}"] = round(
                sum(r[2]["database_ms"] * r[0] for r in runs) / count, 3)
        out[f"db_writes_per_event{suffix}"] = round(sum(r[2]["db_writes"] for r in runs)
                                                    / count, 3)
        out[f"db_reads_per_event{suffix}"] = round(sum(r[2]["db_reads"] for r in runs)
                                                   / count, 3)
        if suffix:
            out[f"last_instance_behind_s{suffix}"] = [round(r[2]["behind"], 2) for r in runs]
    out["two_vs_one_instance"] = round(out["events_applied_per_s_2"]
                                       / out["events_applied_per_s"], 3)
    return first


def replay(ctx, url, amqp_uri, live_per_s):
    """Rebuild the running service's projections from the streams (metrics.rebuild, as
    `make replay` runs it; no grace after the switch: nothing else writes here), and wait
    until the service, following the switch, exposes the same KPIs as before."""
    before = kpi_samples(requests.get(url + "/metrics", timeout=10).text, KPI_FAMILIES)
    config = load_config(ROOT / "services" / "metrics" / "config.yml")
    config.update(AMQP_URI=amqp_uri, REBUILD={**config["REBUILD"], "switch_grace_seconds": 0})
    client = MongoClient(ctx.mongo_uri, tz_aware=True)
    try:
        run_ = Rebuild(MetricsStore(client[ctx.databases["metrics"]], config), config,
                       sleep=time.sleep)
        assert run_.claim()
        status = run_.run()["rebuild"]
    finally:
        client.close()
    deadline = time.monotonic() + 60
    while kpi_samples(requests.get(url + "/metrics", timeout=10).text,
                      KPI_FAMILIES) != before and time.monotonic() < deadline:
        time.sleep(0.2)
    after = kpi_samples(requests.get(url + "/metrics", timeout=10).text, KPI_FAMILIES)
    per_s = status["events"] / status["seconds"]
    return {"replay_events": status["events"], "replay_events_per_s": round(per_s, 1),
            "replay_vs_live_ratio": round(per_s / live_per_s, 2),
            "replay_kpis_match_live": after == before}


KPI_FAMILIES = {"dealflow_events_applied", "dealflow_funnel_reached", "dealflow_funnel_current",
                "dealflow_pipeline_amount", "dealflow_forecast_weighted_amount",
                "dealflow_deal_cycle_seconds", "dealflow_lead_first_response_seconds"}


def run(ctx):
    out = {}
    _, amqp_uri = own_vhost(ctx)  # deleted with the run's (its instances keep running)
    config = load_config(ROOT / "services" / "metrics" / "config.yml")
    rules = domain.Rules.from_config(setting(config, "KPIS"))
    first = scale_out(ctx, amqp_uri, rules, out)
    out.update(replay(ctx, first, amqp_uri, out["events_applied_per_s"]))
    return out


def at_size(ctx):
    """The scrape at 1,000,000 applied events and the restarts (`python -m bench
    metrics_size`: beyond `make bench`'s ten minutes on the shared machine)."""
    out = {}
    config = load_config(ROOT / "services" / "metrics" / "config.yml")
    rules = domain.Rules.from_config(setting(config, "KPIS"))
    small, _, _ = seeded_scrape(ctx, rules, 1_000)
    big, seeded_s, entities = seeded_scrape(ctx, rules, 1_000_000)
    out["seeded_scrape_p50_ms_at_1k"] = small["p50_ms"]
    out["seeded_scrape_p99_ms_at_1k"] = small["p99_ms"]
    out["seeded_scrape_p50_ms_at_1m"] = big["p50_ms"]
    out["seeded_scrape_p99_ms_at_1m"] = big["p99_ms"]
    out["scrape_p99_ratio_1m_vs_1k"] = round(big["p99_ms"] / small["p99_ms"], 2)
    out["seeded_entities_at_1m"] = entities
    out["seed_aggregate_events_per_s"] = round(1_000_000 / seeded_s)
    out.update(restarts(ctx, rules, config))
    return out
