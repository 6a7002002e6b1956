"""Leads: captures per second over HTTP with 10 concurrent clients, the time to import a
CSV of IMPORT_ROWS rows (validation, dedup, bulk assignment and insert, events in the
outboxes), and how fast the outbox relay empties those outboxes onto RabbitMQ."""
import datetime as dt
import os
import random
import time
import uuid

import requests
from pymongo import MongoClient

from bench.harness import bearer, cpu_seconds

RATIOS = {
    "leads_created_per_s": "nameko_http_per_s",
    "import_rows_per_s": "mongo_insert_per_s",
    "import_outboxes_relayed_per_s": "mongo_update_by_id_per_s",
}
COUNTRIES = ["DE", "AT", "US", "CN", "FR", "GB"]
# `make bench` imports 2,000 rows to stay within its ten minutes on the shared machine; the
# rates are per row, and BENCH_IMPORT_ROWS=10000 measures the full-size file
IMPORT_ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", 2_000))


def _lead(i, thread):
    return {
        "name": f"Bench Lead {thread}-{i}",
        "email": f"bench-{thread}-{i}-{uuid.uuid4().hex[:6]}@example.com",
        "company": "Bench GmbH",
        "country": COUNTRIES[i % len(COUNTRIES)],
        "source": "web_form",
        "utm": {"source": "bench", "medium": "cpc"},
    }


def _csv(rows):
    lines = ["name,email,phone,country,company,source,utm_campaign,industry"]
    for i in range(rows):
        country = random.choice(COUNTRIES)
        lines.append(f"导入 {i},import-{i}@example.com,+49 30 {1000000 + i},{country},"
                     f"Firma {i % 97},import,bench,retail")
    return ("\ufeff" + "\n".join(lines) + "\n").encode()


def run(ctx):
    # A cap nobody reaches keeps the benchmark about capture, not about queueing.
    url = ctx.start_service("leads", LEADS_REP_CAP=1_000_000, LEADS_RESPONSE_MINUTES=60)
    out = {}
    leads = MongoClient(ctx.mongo_uri)[ctx.databases["leads"]].leads
    pending = {"outbox_since": {"$gte": dt.datetime(1970, 1, 1, tzinfo=dt.UTC)}}
    pids = (ctx.pid_of(url), ctx.database_pid)
    cpu = [cpu_seconds(pid) for pid in pids]
    with ctx.profiling("leads-create", url, 8.0):
        create = ctx.http_load("POST", url + "/api/v1/leads", clients=10, duration=8.0,
                               json_fn=_lead)
    out["leads_created_per_s"] = create["rps"]
    out["create_p50_ms"] = create["p50_ms"]
    out["create_p99_ms"] = create["p99_ms"]
    out["create_errors"] = create["errors"]
    # CPU per lead until its relay is done too (service and database process): what a
    # creation costs, however much of the two cores the load around left the bench
    drained = time.perf_counter()
    while leads.count_documents(pending) and time.perf_counter() - drained < 60:
        time.sleep(0.05)
    created = create["requests"]
    for name, pid, before in zip(("service", "database"), pids, cpu, strict=True):
        after = cpu_seconds(pid)
        if before is not None and after is not None and created:
            out[f"create_{name}_cpu_ms_per_lead"] = round(1000 * (after - before) / created, 2)

    body = _csv(IMPORT_ROWS)
    started = time.perf_counter()
    resp = requests.post(url + "/api/v1/leads/import", data=body, timeout=120,
                         headers={"Content-Type": "text/csv", "Idempotency-Key": "bench-1",
                                  **bearer()})
    seconds = time.perf_counter() - started
    resp.raise_for_status()
    result = resp.json()
    out["import_rows"] = IMPORT_ROWS
    out["import_seconds"] = round(seconds, 2)
    out["import_rows_per_s"] = round(result["created"] / seconds, 1)
    out["import_created"] = result["created"]
    out["import_rejected"] = len(result["errors"])

    # the relay publishes while the import runs; the import's outboxes are out once no
    # lead has an outbox_since left (an indexed count)
    while leads.count_documents(pending) and time.perf_counter() - started < 600:
        time.sleep(0.05)
    relayed = time.perf_counter() - started
    out["import_relayed_seconds"] = round(relayed, 2)
    out["import_outboxes_relayed_per_s"] = round(result["created"] / relayed, 1)
    leads.database.client.close()

    started = time.perf_counter()
    again = requests.post(url + "/api/v1/leads/import", data=body, timeout=120,
                          headers={"Content-Type": "text/csv", "Idempotency-Key": "bench-1",
                                   **bearer()})
    again.raise_for_status()
    out["import_replay_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return out
