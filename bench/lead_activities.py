"""A lead's activities in the lead document against in buckets (kit.buckets): the size of
a lead with N activities before and after, and the time of a list page (20 leads, newest
first, as GET /api/v1/leads reads it) over leads that each have 20 activities, both
shapes in the same run, in turns, with a raw find by `_id` of a lead that has none as
the anchor.

The "before" database holds the leads as stored before the buckets (every activity in
the lead); the "after" one holds the same documents moved by the service's own migration
(kit.migrations with leads.migrations.activity_buckets), which is timed too. Both are
written straight into databases of their own (BENCH_LEADACTS_LEADS leads, default 5,000;
dropped and seeded again each run). `python -m bench.lead_activities` runs it alone.
"""
import datetime as dt
import os
import random
import sys
import time

import bson
from pymongo import MongoClient

from bench.harness import ROOT, percentile

SAMPLES = 60
PAGE = 20
PER_LEAD = 20
SIZES = (0, 20, 100, 1000)
KINDS = ("call", "email", "meeting", "note")
WORDS = ("asked", "for", "a", "quote", "on", "the", "annual", "plan", "call", "back",
         "next", "week", "budget", "approved", "by", "finance", "demo", "went", "well")


def _activity(rng, now, n):
    from kit import activities

    return activities.entry({"type": rng.choice(KINDS), "outcome": "reached",
                             "summary": " ".join(rng.choice(WORDS) for _ in range(14)),
                             "duration_minutes": rng.randrange(5, 60),
                             "at": now - dt.timedelta(hours=n)}, now, f"rep-{n % 7}")


def _lead(i, rng, now, activities):
    from leads import domain

    rules = domain.LeadRules(scoring=(), grades={"A": 60, "B": 35, "C": 15})
    lead = domain.new_lead({"name": f"Lead {i}", "company": f"Company {i % 900}",
                            "email": f"lead{i}@example.com", "phone": None, "country": "CN",
                            "source": "web_form"}, f"bench-{i:07d}",
                           now - dt.timedelta(minutes=i), rules)
    lead.update(owner_id=f"rep-{i % 40}", team="bench", queue=None, outbox=[], version=2,
                revision=activities)
    # as stored before the buckets: the whole list, no counters
    lead["activities"] = [_activity(rng, now, n) for n in range(activities)]
    del lead[domain.COUNTS]
    return lead


def _migrated(doc, migration):
    return {**doc, **migration.fix(doc)}


def sizes(migration, recent):
    """{N: (bytes before, bytes as migrated, bytes at most between two copies)}."""
    rng, now, out = random.Random(3), dt.datetime.now(dt.UTC), {}
    for n in SIZES:
        before = _lead(n, rng, now, n)
        after = _migrated(before, migration)
        # between two copies the lead holds up to 2 * recent - 1 entries
        fullest = {**after, "activities": [
            {**_activity(rng, now, k), "seq": k + 1} for k in range(min(n, 2 * recent - 1))]}
        out[n] = (len(bson.encode(before)), len(bson.encode(after)),
                  len(bson.encode(fullest)))
    return out


def _seed(db, n):
    from leads.store import LeadsStore

    LeadsStore(db, {}).ensure_indexes()
    rng, now, batch = random.Random(14), dt.datetime.now(dt.UTC), []
    for i in range(n):
        batch.append(_lead(i, rng, now, PER_LEAD))
        if len(batch) == 500:
            db.leads.insert_many(batch, ordered=False)
            batch = []
    if batch:
        db.leads.insert_many(batch, ordered=False)


def run(ctx):
    from kit.migrations import Runner
    from leads.migrations import activity_buckets
    from leads.store import LeadsStore, activity_log

    n = int(os.environ.get("BENCH_LEADACTS_LEADS", "5000"))
    config = {}
    log = activity_log(config)
    migration = activity_buckets(log)
    client = MongoClient(ctx.mongo_uri, tz_aware=True)
    out = {"leads": n, "activities_per_lead": PER_LEAD, "recent": log.recent,
           "bucket_size": log.size}
    for n_acts, (before, after, fullest) in sizes(migration, log.recent).items():
        out[f"lead_bytes_{n_acts}_before"] = before
        out[f"lead_bytes_{n_acts}_after"] = after
        out[f"lead_bytes_{n_acts}_after_at_most"] = fullest
        out[f"lead_bytes_{n_acts}_ratio"] = round(fullest / before, 3)
    dbs = {shape: client[f"bench_leadacts_{shape}"] for shape in ("before", "after", "bare")}
    for db in dbs.values():
        client.drop_database(db.name)
    started = time.perf_counter()
    _seed(dbs["before"], n)
    _seed(dbs["after"], n)
    out["seed_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    Runner(dbs["after"], batch_size=500).run(migration)
    out["migration_s"] = round(time.perf_counter() - started, 1)
    out["buckets"] = dbs["after"][log.collection].estimated_document_count()
    LeadsStore(dbs["bare"], {}).ensure_indexes()
    dbs["bare"].leads.insert_one({"_id": "raw", "name": "raw"})

    stores = {shape: LeadsStore(dbs[shape], {}) for shape in ("before", "after")}
    lat = {"raw": [], "before": [], "after": [], "before_owner": [], "after_owner": []}
    for k in range(SAMPLES):  # in turns, so that the load drifts alike for each
        started = time.perf_counter()
        dbs["bare"].leads.find_one({"_id": "raw"})
        lat["raw"].append(time.perf_counter() - started)
        for shape, store in stores.items():
            started = time.perf_counter()
            rows, _ = store.page({}, PAGE)
            lat[shape].append(time.perf_counter() - started)
            assert len(rows) == PAGE
            started = time.perf_counter()
            store.page({"owner_id": f"rep-{k % 40}"}, PAGE)
            lat[f"{shape}_owner"].append(time.perf_counter() - started)
    for name, values in lat.items():
        out[f"{name}_p50_ms"] = round(percentile(values, 50) * 1000, 2)
    raw = out["raw_p50_ms"]
    for name in ("before", "after", "before_owner", "after_owner"):
        out[f"{name}_page_ratio_to_raw"] = round(out[f"{name}_p50_ms"] / raw, 1)
    out["page_after_over_before"] = round(out["after_p50_ms"] / out["before_p50_ms"], 2)
    out["owner_page_after_over_before"] = round(
        out["after_owner_p50_ms"] / out["before_owner_p50_ms"], 2)
    for db in dbs.values():
        client.drop_database(db.name)
    client.close()
    return out


if __name__ == "__main__":
    import json

    sys.path.insert(0, str(ROOT / "services"))

    class Ctx:
        mongo_uri = os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017")

    print(json.dumps(run(Ctx()), indent=1))
