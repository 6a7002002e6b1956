"""FerretDB bulk writes (deploy/local/ferretdb/bulk.patch): one SQLite transaction per bulk
command instead of one per statement, before vs. after in one run.

    python -m bench.ferret_bulk BEFORE_URI AFTER_URI [--rounds R]

Two servers side by side (the build without bulk.patch and the one with it); the rounds
alternate between them so that both see the same load of the machine. Each round, on
each server: a loop of single insert_one calls (the raw limit the other figures are
divided by), insert_many of 10,000 lead-shaped documents (about 1 KB, the leads service's
indexes) in batches of 500, and bulk_write of 500 UpdateOne by _id. Medians over the
rounds, as documents per second and as ratios to the insert_one loop of the same server
and to the one of the BEFORE server. Each server's database is dropped at the end.
"""
import argparse
import datetime as dt
import json
import random
import statistics
import time

from pymongo import DESCENDING, MongoClient, UpdateOne

from bench.ferret_pushdown import lead

DOCS = 10_000
BATCH = 500
SINGLES = 500


def _leads(client, name):
    client.drop_database(name)
    leads = client[name].leads
    # the leads service's indexes (services/leads/store.py), as bench.ferret_pushdown
    leads.create_index("email_key", unique=True, name="email_key_unique")
    leads.create_index("phone_key", unique=True, name="phone_key_unique")
    leads.create_index([("created_at", DESCENDING), ("_id", DESCENDING)], name="created")
    leads.create_index("status", name="status")
    leads.create_index("owner_id", name="owner")
    leads.create_index("response_due_at", name="response_due")
    return leads


def _round(client, name, seed):
    rng = random.Random(seed)
    now = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    owners = [f"rep-{k:02}" for k in range(20)]
    docs = [lead(i, now, rng, owners) for i in range(DOCS + SINGLES)]
    leads = _leads(client, name)

    t0 = time.perf_counter()
    for d in docs[DOCS:]:
        leads.insert_one(d)
    singles = SINGLES / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    for k in range(0, DOCS, BATCH):
        leads.insert_many(docs[k:k + BATCH])
    many = DOCS / (time.perf_counter() - t0)

    ids = [d["_id"] for d in rng.sample(docs[:DOCS], BATCH)]
    t0 = time.perf_counter()
    result = leads.bulk_write([UpdateOne({"_id": i}, {"$inc": {"version": 1}}) for i in ids],
                              ordered=False)
    updates = BATCH / (time.perf_counter() - t0)
    assert result.modified_count == BATCH
    assert leads.count_documents({}) == DOCS + SINGLES
    return {"insert_one_per_s": singles, "insert_many_per_s": many,
            "bulk_update_per_s": updates}


def run(before_uri, after_uri, rounds):
    servers = {"before": MongoClient(before_uri), "after": MongoClient(after_uri)}
    runs = {k: [] for k in servers}
    name = "ferret_bulk_bench"
    try:
        for r in range(rounds):
            order = list(servers) if r % 2 == 0 else list(reversed(servers))
            for k in order:
                runs[k].append(_round(servers[k], name, seed=r))
    finally:
        for c in servers.values():
            c.drop_database(name)
    med = {k: {f: statistics.median(x[f] for x in v) for f in v[0]} for k, v in runs.items()}
    anchor = med["before"]["insert_one_per_s"]
    out = {"rounds": rounds, "docs": DOCS, "batch": BATCH}
    for k, m in med.items():
        own = m["insert_one_per_s"]
        out[k] = {f: round(v) for f, v in m.items()}
        out[k].update({
            "insert_many_x_own_insert_one": round(m["insert_many_per_s"] / own, 2),
            "bulk_update_x_own_insert_one": round(m["bulk_update_per_s"] / own, 2),
            "insert_many_x_before_insert_one": round(m["insert_many_per_s"] / anchor, 2),
            "bulk_update_x_before_insert_one": round(m["bulk_update_per_s"] / anchor, 2),
        })
    out["after_over_before"] = {
        f: round(med["after"][f] / med["before"][f], 2) for f in med["before"]}
    return out


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args(argv)
    print(json.dumps(run(a.before, a.after, a.rounds), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
