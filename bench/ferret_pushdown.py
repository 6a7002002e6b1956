"""FerretDB pushdown (deploy/local/ferretdb/pushdown.patch): same results, fewer rows read.

    python -m bench.ferret_pushdown check STOCK_URI PATCHED_URI
    python -m bench.ferret_pushdown bench URI N [--rounds R]

`check` loads the same odd documents (arrays, null and missing fields, mixed types, dates)
into both servers and compares the results of a set of queries result for result; `bench`
loads N lead-shaped documents (about 1 KB) with the leads service's indexes and prints the
median time of the hot queries. Both use a database of their own and drop it at the end.
"""
import argparse
import datetime as dt
import json
import random
import statistics
import sys
import time
import uuid

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, MongoClient

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 1, tzinfo=UTC)


def _t(days):
    return T0 + dt.timedelta(days=days)


# --- semantic check ---------------------------------------------------------------------

def odd_documents():
    oid = ObjectId("5f0000000000000000000001")
    values = [
        "a", "b", "ab", "ab!", "ab c", "<x>", "", "A", "中文", "1", "true",
        1, 2, 2.0, 2.5, -1, 0, -0.0, 10**12, 2**53 + 1, 1e300,
        True, False, None, _t(0), _t(1), _t(-20000), dt.datetime(1960, 1, 1, tzinfo=UTC),
        oid, "5f0000000000000000000001",
        ["a", "b"], ["a", 1], [1, 2, 3], [None], [], [_t(0), _t(5)], ["[x", 2.5],
        {"a": 1}, {"x": "a"}, "[a", "{a",
    ]
    docs = []
    for i, v in enumerate(values):
        docs.append({"_id": f"d{i:03}", "f": v, "g": i % 3, "n": i,
                     "s": ["x", "y", "z"][i % 3], "at": _t(i)})
    docs.append({"_id": "missing1", "g": 1, "n": 100, "s": "x", "at": _t(3),
                 "sub": {"x": "a"}})
    docs.append({"_id": "missing2", "g": 2, "n": 101, "s": "y", "at": _t(3)})
    docs.append({"_id": oid, "f": "oid-id", "g": 0, "n": 102, "s": "z", "at": _t(3)})
    # (FerretDB's unique _id key is the JSON text: a string _id equal to an ObjectID's hex
    # is a duplicate)
    return docs


def check_queries():
    oid = ObjectId("5f0000000000000000000001")
    eqs = ["a", "b", "ab", "", "1", 1, 2, 2.0, 2.5, 0, -0.0, 10**12, True, False, None,
           _t(0), _t(5), oid, "5f0000000000000000000001", 2**53 + 1]
    q = [({"f": v}, None, 0) for v in eqs]
    q += [({"f": {"$eq": v}}, None, 0) for v in ["a", 1, None]]
    q += [
        ({"f": {"$in": ["a", 1, None]}}, None, 0),
        ({"f": {"$in": [True, "1", _t(1)]}}, None, 0),
        ({"f": {"$in": []}}, None, 0),
        ({"f": {"$lt": "b"}}, None, 0), ({"f": {"$gte": "ab"}}, None, 0),
        ({"f": {"$gt": "ab", "$lt": "b"}}, None, 0), ({"f": {"$lte": "ab c"}}, None, 0),
        ({"f": {"$lt": 2}}, None, 0), ({"f": {"$lte": 2}}, None, 0),
        ({"f": {"$gt": 1, "$lt": 3}}, None, 0), ({"f": {"$gte": -1}}, None, 0),
        ({"f": {"$gt": 2**53}}, None, 0), ({"f": {"$lt": _t(1)}}, None, 0),
        ({"f": {"$lte": _t(0)}}, None, 0), ({"f": {"$gt": _t(-30000)}}, None, 0),
        ({"f": {"$gt": 1, "$lt": "z"}}, None, 0),
        ({"f": {"$ne": "a"}}, None, 0), ({"f": {"$exists": False}}, None, 0),
        ({"f": {"$regex": "^a"}}, None, 0), ({"f": ["a", "b"]}, None, 0),
        ({"f": {"a": 1}}, None, 0), ({"f": {"$in": ["a", {"a": 1}]}}, None, 0),
        ({"_id": "d001"}, None, 0), ({"_id": oid}, None, 0),
        ({"_id": "5f0000000000000000000001"}, None, 0),
        ({"_id": {"$in": ["d001", "d002", oid, "nope"]}}, None, 0),
        ({"_id": {"$lt": "d005"}}, None, 0), ({"_id": "d001", "g": 1}, None, 0),
        ({"g": 1, "s": "x"}, None, 0), ({"g": {"$in": [0, 2]}, "n": {"$lt": 20}}, None, 0),
        ({"$or": [{"f": "a"}, {"f": 1}]}, None, 0),
        ({"$or": [{"f": "a"}, {"f": {"$regex": "b"}}]}, None, 0),
        ({"$and": [{"g": 1}, {"n": {"$gte": 5}}]}, None, 0),
        ({"$or": [{"g": 1, "n": {"$lt": 10}}, {"s": "z"}], "n": {"$gt": 2}}, None, 0),
        # sorts with limits: the service's list page and its keyset continuation
        ({}, [("at", DESCENDING), ("_id", DESCENDING)], 7),
        ({"g": 1}, [("at", DESCENDING), ("_id", DESCENDING)], 5),
        ({"g": 1}, [("at", ASCENDING), ("_id", ASCENDING)], 5),
        ({"s": "x", "$or": [{"at": {"$lt": _t(10)}}, {"at": _t(10), "_id": {"$lt": "d010"}}]},
         [("at", DESCENDING), ("_id", DESCENDING)], 3),
        ({"g": 1}, [("n", DESCENDING), ("_id", ASCENDING)], 4),
        ({"$or": [{"at": {"$lt": _t(20)}}, {"at": _t(20), "_id": {"$lt": "d030"}}]},
         [("at", DESCENDING), ("_id", DESCENDING)], 4),
        ({"$or": [{"f": {"$lt": 2}}, {"f": 2, "g": 1}]}, [("f", DESCENDING), ("_id", ASCENDING)],
         5),
        ({"$or": [{"f": {"$lte": "b"}}, {"f": {"$gt": 1, "$lt": "z"}}, {"f": "ab"}]}, None, 0),
        ({"$or": [{"n": {"$gt": 3, "$lt": 8}}, {"n": {"$gte": 30}}, {"n": 5.5}]}, None, 0),
        ({"$or": [{"n": {"$lt": 3}}, {"n": 40, "g": {"$ne": 1}}]},
         [("n", ASCENDING), ("_id", ASCENDING)], 3),
        ({"f": {"$gte": 0}}, [("f", ASCENDING), ("_id", ASCENDING)], 6),
        ({}, [("f", DESCENDING), ("_id", ASCENDING)], 10),
        ({"g": 2}, [("at", DESCENDING)], 3),
        ({"g": 1}, [("s", DESCENDING), ("_id", ASCENDING)], 4),
        ({"g": 0}, [("f", ASCENDING), ("_id", ASCENDING)], 6),
        ({"g": 0, "f": {"$type": "array"}}, [("f", ASCENDING), ("_id", ASCENDING)], 3),
        ({"n": {"$lt": 30}}, [("sub", ASCENDING), ("_id", ASCENDING)], 3),
        ({"g": {"$ne": 2}}, [("at", DESCENDING), ("_id", DESCENDING)], 3),
        ({"g": 1, "sub.x": "a"}, [("at", DESCENDING), ("_id", DESCENDING)], 2),
        ({"f.x": "a"}, None, 0), ({"f.a": 1, "g": 1}, None, 0),
        ({"g": 0, "$comment": "c"}, [("at", DESCENDING), ("_id", DESCENDING)], 2),
        ({"n": {"$gte": 3}}, [("_id", ASCENDING)], 4),
    ]
    return q


def _key(doc):
    return json.dumps(doc, default=str, sort_keys=True)


def run_check(stock_uri, patched_uri):
    dbs = [MongoClient(u)[f"pushdown_check_{uuid.uuid4().hex[:8]}"] for u in
           (stock_uri, patched_uri)]
    docs = odd_documents()
    failures = 0
    try:
        for db in dbs:
            db.c.create_index("f")
            db.c.create_index("g")
            db.c.create_index([("at", DESCENDING), ("_id", DESCENDING)])
            db.c.create_index([("n", ASCENDING)])
            db.c.insert_many(docs)
        for filt, sort, limit in check_queries():
            out = []
            for db in dbs:
                cur = db.c.find(filt)
                if sort:
                    cur = cur.sort(sort)
                if limit:
                    cur = cur.limit(limit)
                rows = [_key(d) for d in cur]
                # without a total order, tied documents may come in any order
                out.append(rows if sort and sort[-1][0] == "_id" else sorted(rows))
            counts = [db.c.count_documents(filt) for db in dbs]
            same = out[0] == out[1] and counts[0] == counts[1]
            failures += not same
            print(f"{'ok ' if same else 'DIFF'} {len(out[0]):3} {filt} sort={sort} "
                  f"limit={limit}")
            if not same:
                print("   stock:  ", out[0], counts[0], "\n   patched:", out[1], counts[1])
        # writes through the pushed filters
        for db in dbs:
            db.c.update_many({"g": 1, "n": {"$lt": 20}}, {"$set": {"u": 1}})
            db.c.delete_many({"f": {"$in": ["b", 2]}})
            db.c.find_one_and_update({"s": "z", "n": {"$gte": 5}}, {"$set": {"w": 1}},
                                     sort=[("n", ASCENDING)])
        after = [sorted(_key(d) for d in db.c.find()) for db in dbs]
        same = after[0] == after[1]
        failures += not same
        print(f"{'ok ' if same else 'DIFF'} after update_many, delete_many, find_one_and_update")
    finally:
        for db in dbs:
            db.client.drop_database(db.name)
    print(f"{failures} differences")
    return failures


# --- bench ------------------------------------------------------------------------------

def lead(i, now, rng, owners):
    created = now - dt.timedelta(seconds=rng.randrange(365 * 86400))
    due = created + dt.timedelta(hours=4) if rng.random() < 0.3 else None
    email = f"user{i}@example{i % 97}.com"
    return {
        "_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "name": f"Lead {i} 张伟" if i % 2 else f"Lead {i} Smith",
        "email": email, "email_key": email, "phone_key": f"+86139{i:08}",
        "owner_id": owners[i % len(owners)], "status": rng.choice(
            ["new", "contacted", "qualified", "disqualified", "converted"]),
        "source": rng.choice(["web", "import", "referral", "event"]),
        "country": "CN" if i % 3 else "GB", "region": "east",
        "created_at": created, "updated_at": created, "response_due_at": due,
        "notes": "x" * 600, "version": 1, "tags": ["a", "b"],
    }


def timed(fn, rounds):
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run_bench(uri, n, rounds, keep=False, compound=False):
    client = MongoClient(uri)
    db = client[f"pushdown_bench_{n}"]
    client.drop_database(db.name)
    leads = db.leads
    # the leads service's indexes (services/leads/store.py)
    leads.create_index("email_key", unique=True, name="email_key_unique")
    leads.create_index("phone_key", unique=True, name="phone_key_unique")
    leads.create_index([("created_at", DESCENDING), ("_id", DESCENDING)], name="created")
    leads.create_index("status", name="status")
    leads.create_index("owner_id", name="owner")
    leads.create_index("response_due_at", name="response_due")
    if compound:  # what MongoDB needs too for this page without an in-memory sort
        leads.create_index([("owner_id", ASCENDING), ("created_at", DESCENDING),
                            ("_id", DESCENDING)], name="owner_created")
    rng = random.Random(7)
    now = dt.datetime(2026, 11, 27, tzinfo=UTC)
    owners = [f"rep-{k:02}" for k in range(20)]
    t0 = time.perf_counter()
    docs = [lead(i, now, rng, owners) for i in range(n)]
    for k in range(0, n, 1000):
        leads.insert_many(docs[k:k + 1000], ordered=False)
    load_s = time.perf_counter() - t0
    picks = [docs[rng.randrange(n)] for _ in range(rounds)]
    it = iter(range(10**9))

    def pick():
        return picks[next(it) % rounds]

    def keyset_page():
        # the list's continuation (services/leads/store.py): a page from the middle
        d = pick()
        return list(leads.find({"owner_id": d["owner_id"], "$or": [
            {"created_at": {"$lt": d["created_at"]}},
            {"created_at": d["created_at"], "_id": {"$lt": d["_id"]}}]}).sort(
            [("created_at", DESCENDING), ("_id", DESCENDING)]).limit(21))

    results = {
        "find by _id": lambda: leads.find_one({"_id": pick()["_id"]}),
        "find by email_key": lambda: leads.find_one({"email_key": pick()["email_key"]}),
        "20 by owner, created_at desc": lambda: list(
            leads.find({"owner_id": pick()["owner_id"]}).sort(
                [("created_at", DESCENDING), ("_id", DESCENDING)]).limit(21)),
        "next page by owner (keyset $or)": keyset_page,
        "first list page (no filter)": lambda: list(leads.find({}).sort(
            [("created_at", DESCENDING), ("_id", DESCENDING)]).limit(21)),
        "response_due_at <= now, limit 200": lambda: list(
            leads.find({"response_due_at": {"$lte": now}}, {"_id": 1}).limit(200)),
        "count by owner": lambda: leads.count_documents({"owner_id": pick()["owner_id"]}),
        "update by _id": lambda: leads.update_one({"_id": pick()["_id"]},
                                                  {"$inc": {"version": 1}}),
    }
    out = {"n": n, "compound": compound, "load_s": round(load_s, 1)}
    for name, fn in results.items():
        out[name] = round(timed(fn, rounds), 2)
    if not keep:
        client.drop_database(db.name)
    return out


def main(argv=None):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("stock")
    c.add_argument("patched")
    b = sub.add_parser("bench")
    b.add_argument("uri")
    b.add_argument("n", type=int)
    b.add_argument("--rounds", type=int, default=15)
    b.add_argument("--compound", action="store_true",
                   help="add an (owner_id, created_at desc, _id desc) index")
    a = p.parse_args(argv)
    if a.cmd == "check":
        return 1 if run_check(a.stock, a.patched) else 0
    print(json.dumps(run_bench(a.uri, a.n, a.rounds, compound=a.compound), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
