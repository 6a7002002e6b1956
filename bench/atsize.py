"""At size: issue 18's targets measured on one platform loaded as a user would load it.

    MONGO_URI=... python -m bench atsize        # ATSIZE_LEADS leads (default 100,000)

1. leads and deals run as `nameko run` processes (databases and a vhost of this run's own)
   and `bench.seed` loads ATSIZE_LEADS leads and their deals' history through the public
   APIs, as `make seed` does: its seconds are the `make seed` figure.
2. List pages (the lists' filters are the search) are timed at that size, p99 over a few
   seconds each, the first page and a keyset continuation. Lead creation and stage moves
   (10 clients each, as bench/leads.py and bench/deals.py load them) are measured on a
   copy of 1,000 of those leads and 200 deals, then at full size, in the same run: their
   ratio is the target "at 100,000 leads >= 0.9 x at 1,000".
3. The metrics service restarts on 1,000,000 applied events (100,000 leads, 20,000 deals):
   as bench/metrics.py says, those projections and their snapshot are written straight
   into its database, not pushed through AMQP (far beyond a bench's budget); the restart
   itself is real, and so is the funnel on that state.
4. With nobody using the platform (timers, sweeps and the metrics refresh running at their
   configured intervals) the CPU time of the database and of the three services over
   IDLE_WINDOW_SECONDS is read from /proc (the database's pid from FERRETDB_PID or
   var/ferretdb/ferretdb.pid), as a percentage of one core.

ATSIZE_LEADS=0 runs 3 and 4 only (the metrics service and the database);
ATSIZE_PLATFORM_ONLY=1 runs 1 and 2 only.

ATSIZE_FROM=<leads database>,<deals database> skips the seed: the leads and deals that a
seed left there (on a loaded machine one may stop it part way) are copied STRAIGHT INTO
those databases until they hold ATSIZE_LEADS leads and a fifth as many deals (new ids,
e-mail and phone keys, the deals pointing at the copied leads, outboxes empty: documents
as the stores wrote them), and 2 and 4 run on them.
"""
import datetime as dt
import os
import time
import uuid

import requests
from pymongo import MongoClient

from bench import deals as deals_bench
from bench import idle
from bench import leads as leads_bench
from bench import metrics as metrics_bench
from bench.harness import ROOT, bearer
from bench.seed import seed
from kit.config import load_config, setting
from metrics import domain

RATIOS = {"seed_leads_per_s": "mongo_insert_per_s"}
LEADS = int(os.environ.get("ATSIZE_LEADS", 100_000))
SMALL = 1_000  # the size the write rates at size are compared with
# the write phases' services: a cap nobody reaches keeps creation about capture
WRITE_ENV = {"LEADS_REP_CAP": 1_000_000, "LEADS_RESPONSE_MINUTES": 60}


def _pages(ctx, url, path, queries, out, prefix):
    session = requests.Session()
    session.headers.update(bearer())  # security is on by default
    for label, query in queries.items():
        first = session.get(f"{url}{path}", params={"limit": 20, **query}, timeout=30)
        first.raise_for_status()
        cursor = first.json().get("next_cursor")
        params = "&".join(f"{k}={requests.utils.quote(str(v))}" for k, v in
                          {"limit": 20, **query}.items())
        load = ctx.http_load("GET", f"{url}{path}?{params}", clients=1, duration=3.0)
        out[f"{prefix}_{label}_p50_ms"] = load["p50_ms"]
        out[f"{prefix}_{label}_p99_ms"] = load["p99_ms"]
        out[f"{prefix}_{label}_items"] = len(first.json()["items"])
        if cursor:
            load = ctx.http_load("GET", f"{url}{path}?{params}&cursor="
                                 f"{requests.utils.quote(cursor)}", clients=1, duration=2.0)
            out[f"{prefix}_{label}_page2_p99_ms"] = load["p99_ms"]


def run(ctx, leads=None):
    leads = int(LEADS if leads is None else leads)
    out = {"leads": leads}
    pids = {}
    if leads:
        _platform(ctx, leads, out, pids)
    if os.environ.get("ATSIZE_PLATFORM_ONLY"):  # lists and write rates, no metrics or idle
        return out

    config = load_config(ROOT / "services" / "metrics" / "config.yml")
    rules = domain.Rules.from_config(setting(config, "KPIS"))
    started = time.monotonic()
    metrics_url, name, figures = metrics_bench.restart(ctx, rules, config, 1_000_000)
    out.update({f"metrics_{k}_at_1m": v for k, v in figures.items()})
    out.update({f"metrics_{k}": v for k, v in
                metrics_bench.funnel_figures(ctx, metrics_url, name, rules, 365).items()})
    pids["metrics"] = ctx._procs[-1].pid

    idle._wait_until_drained(ctx, timeout=600)
    # a restored instance writes one snapshot of what it caught up on, a snapshot period
    # after its start: that is not idle work, so the window opens after it
    settle = float(setting(config, "KPIS.snapshot_seconds", 60)) + 30
    time.sleep(max(0.0, started + settle - time.monotonic()))
    database = idle._database_pid()
    if database:
        pids["database"] = database
    before = {name: idle._cpu_seconds(pid) for name, pid in pids.items()}
    time.sleep(idle.WINDOW_SECONDS)
    each = {name: round(100 * (idle._cpu_seconds(pid) - before[name]) / idle.WINDOW_SECONDS,
                        2) for name, pid in pids.items()}
    out["idle_cpu_percent_of_one_core"] = round(sum(each.values()), 2)
    out["idle_cpu_percent_by_process"] = each
    out["idle_database_measured"] = bool(database)
    return out


def _copy(coll, target, change):
    """Copies of the collection's documents (changed by `change(doc, k)`) until it holds
    `target`; returns how many it wrote."""
    originals = list(coll.find({}))
    written, k, batch = 0, 0, []
    while originals and len(originals) + written < target:
        k += 1
        for doc in originals:
            if len(originals) + written + len(batch) >= target:
                break
            batch.append(change(dict(doc), k))
            if len(batch) == 1000:
                coll.insert_many(batch, ordered=False)
                written += len(batch)
                batch = []
        if batch:
            coll.insert_many(batch, ordered=False)
            written += len(batch)
            batch = []
    return written


def _copied_id(_id, k):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{_id}/{k}"))


def _copy_lead(doc, k):
    doc["_id"] = _copied_id(doc["_id"], k)
    for field in ("email", "email_key"):
        if doc.get(field):
            doc[field] = f"c{k}.{doc[field]}"
    if doc.get("phone_key"):
        doc["phone_key"] = f"{doc['phone_key']}-c{k}"
    doc["outbox"] = []
    doc.pop("outbox_since", None)
    return doc


def _copy_deal(doc, k):
    doc["_id"] = _copied_id(doc["_id"], k)
    if doc.get("lead_id"):
        doc["lead_id"] = _copied_id(doc["lead_id"], k)
    doc["outbox"] = []
    doc.pop("outbox_since", None)
    return doc


def _platform(ctx, leads, out, pids):
    """leads and deals loaded by the seed (or copied to size); their list pages timed."""
    source = os.environ.get("ATSIZE_FROM")
    if source:
        leads_db, deals_db = source.split(",")
        client = MongoClient(ctx.mongo_uri, tz_aware=True)
        started = time.monotonic()
        out["copied_leads"] = _copy(client[leads_db].leads, leads, _copy_lead)
        out["copied_deals"] = _copy(client[deals_db].deals, leads // 5, _copy_deal)
        out["copy_seconds"] = round(time.monotonic() - started, 1)
        out["stored_leads"] = client[leads_db].leads.count_documents({})
        out["stored_deals"] = client[deals_db].deals.count_documents({})
        client.close()
        urls = {"leads": ctx.start_service("leads", MONGO_DATABASE=leads_db, **WRITE_ENV),
                "deals": ctx.start_service("deals", MONGO_DATABASE=deals_db, **WRITE_ENV)}
        pids.update({name: proc.pid for name, proc in zip(urls, ctx._procs[-2:], strict=True)})
        _lists(ctx, urls, out)
        _write_rates(ctx, urls, {"leads": leads_db, "deals": deals_db}, out)
        return

    urls = {name: ctx.start_service(name, **WRITE_ENV) for name in ("leads", "deals")}
    pids.update({name: proc.pid for name, proc in zip(urls, ctx._procs[-2:], strict=True)})

    started = time.monotonic()
    # security is on by default: the seeder goes through the APIs as an admin
    token = bearer()["Authorization"].split(" ", 1)[1]
    report = seed(leads, urls["leads"], urls["deals"], token=token, workers=2,
                  log=lambda line: print(line, flush=True))
    out["seed_seconds"] = round(time.monotonic() - started, 1)
    out["seed_phases_seconds"] = report["seconds"]
    out["seed_leads_per_s"] = round(leads / out["seed_seconds"], 1)
    out["seed_created"] = report["leads"]["created"]
    out["seed_deals"] = report["deals"]
    print(f"seeded in {out['seed_seconds']} s", flush=True)

    # what the load caused is published before anything is timed
    idle._wait_until_relayed(urls["leads"], timeout=1800)
    idle._wait_until_relayed(urls["deals"], timeout=1800)
    out["relayed_after_seed_seconds"] = round(time.monotonic() - started - out["seed_seconds"],
                                              1)
    _lists(ctx, urls, out)
    _write_rates(ctx, urls, dict(ctx.databases), out)


def _lists(ctx, urls, out):
    # an owner and a source the seed used: the newest leads may be the write phases' own
    # (no owner, one source), so they are taken from leads older than a day
    day_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    some = requests.get(urls["leads"] + "/api/v1/leads", params={
        "limit": 50, "created_to": day_ago}, timeout=30, headers=bearer()).json()["items"]
    owner = next((i["owner_id"] for i in some if i.get("owner_id")), "nobody")
    source = next((i["source"] for i in some if i.get("source")), "import")
    year_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=200)).isoformat()
    _pages(ctx, urls["leads"], "/api/v1/leads", {
        "newest": {}, "owner": {"owner_id": owner}, "status": {"status": "qualified"},
        "source": {"source": source}, "grade": {"grade": "B"},
        "created_range": {"created_from": year_ago}}, out, "leads_list")
    _pages(ctx, urls["deals"], "/api/v1/deals", {
        "newest": {}, "status_won": {"status": "won"}, "stage": {"stage": "proposal"}},
        out, "deals_list")


def _writes(ctx, urls, deals_db):
    """(leads created per second, stage moves per second), 10 clients each."""
    create = ctx.http_load("POST", urls["leads"] + "/api/v1/leads", clients=10, duration=5.0,
                           json_fn=leads_bench._lead)
    latencies, errors, wall, _db, _lag, exact = deals_bench.phase(ctx, [urls["deals"]],
                                                                   deals_db)
    return create["rps"], round(len(latencies) / wall, 1), create["errors"] + errors, exact


def _write_rates(ctx, urls, databases, out):
    """Lead creation and stage moves at SMALL leads and at full size, in this run: the small
    databases are copies of the first SMALL leads and SMALL/5 deals of the full ones."""
    client = MongoClient(ctx.mongo_uri, tz_aware=True)
    small = {name: ctx.new_database(f"{name}_small") for name in ("leads", "deals")}
    for name, limit in (("leads", SMALL), ("deals", SMALL // 5)):
        docs = list(client[databases[name]][name].find({}).limit(limit))
        if docs:
            client[small[name]][name].insert_many(docs)
    client.close()
    small_urls = {name: ctx.start_service(name, MONGO_DATABASE=small[name], **WRITE_ENV)
                  for name in ("leads", "deals")}
    for label, where, dbs in (("small", small_urls, small), ("size", urls, databases)):
        created, moved, errors, exact = _writes(ctx, where, dbs["deals"])
        out[f"leads_created_per_s_at_{label}"] = created
        out[f"stage_moves_per_s_at_{label}"] = moved
        out[f"write_errors_at_{label}"] = errors
        out[f"stage_moves_exact_at_{label}"] = exact
    for figure in ("leads_created_per_s", "stage_moves_per_s"):
        if out[f"{figure}_at_small"]:
            out[f"{figure}_size_vs_small"] = round(
                out[f"{figure}_at_size"] / out[f"{figure}_at_small"], 3)
