"""FerretDB's own CPU per write, in ms: what bounds lead creation, stage moves and the seed.

    MONGO_URI=... python -m bench.ferret_cpu [--docs 20000] [--ops 1000] [--rounds 3]
    python -m bench.ferret_cpu URI_A URI_B ...   # builds or settings side by side

On a `leads` collection with the leads service's indexes (services/leads/store.py and
kit.outbox's `outbox_since`) holding --docs lead-shaped documents of ~1.5 KB, each with
one event in its outbox, it times four kinds of single-document writes, --ops of each
per round, and reads the CPU the process listening on MONGO_URI's port used meanwhile
(utime + stime from /proc, so the figure does not depend on the machine's load):

- insert: `insert_one` of a new lead with its outbox (a lead's creation);
- clear: the relay's outbox clear (`update_one` on `_id` and the outbox, `$set` outbox
  to [] and `$unset` outbox_since), each on a different loaded lead;
- set: `update_one` by `_id` of one field;
- fam: `find_one_and_update` by `_id`, `$inc` + `$set`, returning the new document.

Prints JSON: per server, CPU-ms per op for each kind, the median over the rounds (and
each round's). With several servers the rounds alternate between them, so that a change
of the machine's load (CPU per op grows with it) falls on both. The database
(`ferret_cpu_bench`) is kept between runs of the same --docs (--fresh drops it).
"""
import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import uuid

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument, UpdateOne

from bench.harness import database_pid
from bench.idle import _cpu_seconds

DB = "ferret_cpu_bench"
OWNERS = [f"rep-{k:02}" for k in range(20)]
KINDS = ("insert", "clear", "set", "fam")


def _indexes(leads):
    """The leads service's indexes on `leads` (services/leads/store.py), 15 with `_id`'s."""
    leads.create_index("email_key", unique=True, name="email_key_unique")
    leads.create_index("phone_key", unique=True, name="phone_key_unique")
    leads.create_index([("created_at", DESCENDING), ("_id", DESCENDING)], name="created")
    for field in ("owner_id", "status", "source", "grade", "team"):
        leads.create_index([(field, ASCENDING), ("created_at", DESCENDING),
                            ("_id", DESCENDING)], name=f"{field}_created")
    leads.create_index([("owner_id", ASCENDING), ("status", ASCENDING)], name="owner_status")
    leads.create_index("response_due_at", name="response_due")
    for field in ("name_key", "company_key", "email", "phone"):
        leads.create_index([(field, ASCENDING), ("_id", ASCENDING)], name=f"search_{field}")
    leads.create_index("outbox_since")


def lead(i, rng, now):
    created = now - dt.timedelta(seconds=rng.randrange(365 * 86400))
    _id = id_of(i)
    email = f"user{i}@example{i % 97}.com"
    name = f"Lead {i} 张伟" if i % 2 else f"Lead {i} Smith"
    return {
        "_id": _id, "version": 1, "name": name, "name_key": name.lower(),
        "email": email, "email_key": email, "phone": f"+86 139 {i:08}",
        "phone_key": f"+86139{i:08}", "company": f"Company {i % 5000}",
        "company_key": f"company {i % 5000}", "owner_id": OWNERS[i % len(OWNERS)],
        "team": f"team-{i % 4}", "status": rng.choice(["new", "contacted", "qualified"]),
        "source": rng.choice(["web", "import", "referral", "event"]),
        "grade": rng.choice(["A", "B", "C", "D"]), "score": rng.randrange(100),
        "country": "CN" if i % 3 else "GB", "created_at": created, "updated_at": created,
        "response_due_at": created + dt.timedelta(hours=4),
        "notes": "x" * 300, "tags": ["a", "b"],
        "activity_counts": {"call": 1, "email": 2},
        "activities": [{"type": "email", "at": created, "by": "rep-01", "text": "y" * 60}],
        "outbox": [event(_id, rng, created)], "outbox_since": created,
    }


def id_of(i):
    """Random-looking (as the services' uuid4) but known without reading the collection."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lead-{i}"))


def event(subject, rng, at):
    return {"id": str(uuid.UUID(int=rng.getrandbits(128))), "type": "lead.created",
            "subject": subject, "version": 1, "occurred_at": at, "actor": "system:leads",
            "data": {"owner_id": "rep-01", "source": "web", "score": 10}}


def _load(db, n, rng, now, fresh):
    # a count would read every document on FerretDB v1: the load leaves a mark instead
    if not fresh and db.loaded.find_one({"_id": n}):
        return db.leads
    db.client.drop_database(DB)
    leads = db.leads
    _indexes(leads)
    for k in range(0, n, 1000):
        leads.insert_many([lead(i, rng, now) for i in range(k, min(n, k + 1000))],
                          ordered=False)
    db.loaded.insert_one({"_id": n})
    return leads


class Server:
    """One FerretDB under test: its loaded collection, its pid, and the timed writes."""

    def __init__(self, uri, n, ops, fresh):
        self.client = MongoClient(uri)
        self.pid = database_pid(uri)
        if self.pid is None:
            raise SystemExit(f"no local process listens on {uri}'s port")
        self.ops = ops
        self.rng = random.Random()  # each run its own picks: none repeats an earlier write
        self.now = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
        self.leads = _load(self.client[DB], n, self.rng, self.now, fresh)
        self.ids = [id_of(i) for i in range(n)]
        self.serial = 10**9 + random.randrange(10**8)  # new leads of this run (unique keys)
        self.pending = []
        self.figures = {}

    def arm(self):
        """Give `ops` loaded leads an outbox again (not timed), for the clears to empty."""
        self.pending = [(i, [event(i, self.rng, self.now)])
                        for i in self.rng.sample(self.ids, self.ops)]
        self.leads.bulk_write([UpdateOne({"_id": i}, {"$set": {"outbox": ev,
                                                               "outbox_since": self.now}})
                               for i, ev in self.pending], ordered=False)

    def insert(self, k):
        self.leads.insert_one(lead(self.serial + k, self.rng, self.now))

    def clear(self, k):
        i, ev = self.pending.pop()
        res = self.leads.update_one({"_id": i, "outbox": ev},
                                    {"$set": {"outbox": []}, "$unset": {"outbox_since": ""}})
        assert res.modified_count == 1

    def set(self, k):
        self.leads.update_one({"_id": self.rng.choice(self.ids)},
                              {"$set": {"score": self.serial + k}})

    def fam(self, k):
        self.leads.find_one_and_update({"_id": self.rng.choice(self.ids)},
                                       {"$inc": {"version": 1}, "$set": {"updated_at": self.now}},
                                       return_document=ReturnDocument.AFTER)

    def measure(self, kind, r):
        if kind == "clear":
            self.arm()
        op = getattr(self, kind)
        before = _cpu_seconds(self.pid)
        for k in range(self.ops):
            op(r * self.ops + k)
        self.figures.setdefault(kind, []).append(
            1000 * (_cpu_seconds(self.pid) - before) / self.ops)

    def report(self):
        return {"cpu_ms_per_op": {k: round(statistics.median(v), 3)
                                  for k, v in self.figures.items()},
                "rounds_cpu_ms": {k: [round(x, 3) for x in v] for k, v in self.figures.items()}}


def run(uris, n, ops, rounds, fresh=False, kinds=KINDS):
    """Each URI's figures; with several, the rounds alternate their order (same load)."""
    servers = [Server(uri, n, ops, fresh) for uri in uris]
    print("timing", file=sys.stderr, flush=True)  # the setup's reads are done (profiling)
    for r in range(rounds):
        for server in servers if r % 2 == 0 else reversed(servers):
            for kind in kinds:
                server.measure(kind, r)
    for server in servers:
        server.client.close()
    return {"docs": n, "ops": ops, "rounds": rounds,
            "servers": {uri: server.report() for uri, server in zip(uris, servers, strict=True)}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("uris", nargs="*", help="servers side by side (default: MONGO_URI)")
    p.add_argument("--docs", type=int, default=20_000)
    p.add_argument("--ops", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--fresh", action="store_true", help="drop and reload the collection")
    p.add_argument("--kinds", default=",".join(KINDS))
    a = p.parse_args(argv)
    uris = a.uris or [os.environ.get("MONGO_URI", "mongodb://127.0.0.1:27017")]
    print(json.dumps(run(uris, a.docs, a.ops, a.rounds, a.fresh, a.kinds.split(",")),
                     indent=1))


if __name__ == "__main__":
    main()
