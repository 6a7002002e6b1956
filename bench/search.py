"""Lead search at size: p50/p99 of a search by each key (name, company, e-mail, phone) over
100,000 leads, as a ratio to a raw indexed find on the same database.

The leads are written straight into a database of their own (not through the API: 100,000
captures would take most of `make bench`'s ten minutes), built by the leads service's own
domain (leads.domain.new_lead, so each carries the search keys the service stores) and
indexed by its store; they carry no events. The database is kept between runs and reused
when it holds the leads already (BENCH_SEARCH_LEADS sets how many; drop
`bench_search_<n>` to seed again). A search runs the service's code from the query to the
page (leads.search, LeadsStore.search), without HTTP, so the ratio is the query's cost;
the raw find is `find_one` on the indexed `email` field.
"""
import datetime as dt
import os
import random
import time

import phonenumbers
from pymongo import MongoClient

from bench.harness import percentile

SAMPLES = 200
PAGE = 20
SURNAMES = ["Zhang", "Wang", "Li", "Liu", "Chen", "Müller", "Schmidt", "Smith", "Garcia",
            "Nguyen", "Kim", "Tanaka", "Rossi", "Novak", "Silva", "张", "王", "李", "刘"]
GIVEN = ["Wei", "Fang", "Na", "Lei", "Anna", "Jonas", "Maria", "John", "Yuki", "Ana", "伟",
         "芳", "娜", "磊"]
WORDS = ["Analytical", "Engines", "Acme", "Global", "Blue", "River", "Nordic", "Pacific",
         "Quantum", "Orbit", "Lotus", "Harbor", "华为", "腾讯", "阿里", "Stone", "Maple"]
MOBILE = ["130", "131", "135", "138", "139", "150", "151", "158", "186", "188", "199"]
FORMS = ["Inc.", "GmbH", "Ltd", "有限公司", "LLC", "", "AG", "Co., Ltd."]


def _lead(i, rng):
    from leads import domain

    name = f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)} {i}"
    company = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i % 20000} {rng.choice(FORMS)}"
    # unique, as the dedup index requires: the lead's number in the last eight digits
    phone = f"+86 {rng.choice(MOBILE)} {i // 10000 % 10000:04d} {i % 10000:04d}"
    data = {"name": name, "company": company.strip(),
            "email": f"user{i}@{rng.choice(WORDS).lower()}{i % 500}.example",
            "phone": domain.normalise_phone(phone), "country": "CN", "region": None,
            "source": "web_form", "utm": {}, "custom": {}}
    return data


def _seed(db, n):
    from leads import domain
    from leads.store import LeadsStore

    store = LeadsStore(db, {})
    store.ensure_indexes()
    have = db.leads.estimated_document_count()
    if have >= n:
        return
    if have:  # an earlier seeding stopped part way: start again
        db.leads.delete_many({})
        have = 0
    rng = random.Random(14)
    rules = domain.LeadRules(scoring=(), grades={"A": 60, "B": 35, "C": 15})
    now = dt.datetime.now(dt.UTC)
    batch = []
    for i in range(have, n):
        lead = domain.new_lead(_lead(i, rng), f"bench-{i:07d}", now, rules)
        lead.update(owner_id=f"rep-{i % 40}", team="bench", queue=None)
        batch.append(lead)
        if len(batch) == 1000:
            db.leads.insert_many(batch, ordered=False)
            batch = []
    if batch:
        db.leads.insert_many(batch, ordered=False)


def _timed(fn, args):
    lat = []
    for arg in args:
        started = time.perf_counter()
        fn(arg)
        lat.append((time.perf_counter() - started) * 1000)
    return percentile(lat, 50), percentile(lat, 99)


def _queries(sample, key):
    if key == "name":
        return [(d["name"][:6], "name") for d in sample]
    if key == "company":
        return [(d["company"][:8], "company") for d in sample]
    if key == "email":
        return [(d["email"].upper(), "email") for d in sample]
    national = [phonenumbers.format_number(phonenumbers.parse(d["phone"]),
                                           phonenumbers.PhoneNumberFormat.NATIONAL)
                for d in sample]
    return [(p, "phone") for p in national]  # e.g. "138 0013 8000", as a rep types it


def run(ctx):
    from leads import search
    from leads.store import LeadsStore

    n = int(os.environ.get("BENCH_SEARCH_LEADS", "100000"))
    client = MongoClient(ctx.mongo_uri, tz_aware=True)
    db = client[f"bench_search_{n}"]  # kept: the next run reuses it
    started = time.perf_counter()
    _seed(db, n)
    out = {"leads": n, "seed_s": round(time.perf_counter() - started, 1)}
    store = LeadsStore(db, {})
    rng = random.Random(7)
    ids = [f"bench-{rng.randrange(n):07d}" for _ in range(SAMPLES)]
    sample = [db.leads.find_one({"_id": i}) for i in ids]

    raw = _timed(lambda d: db.leads.find_one({"email": d["email"]}), sample)
    out["raw_find_p50_ms"], out["raw_find_p99_ms"] = round(raw[0], 2), round(raw[1], 2)

    def searched(query):
        q, by = query
        prefixes = search.prefixes(q, by, "CN")
        rows, _ = search.merge(store.search(prefixes, {}, None, PAGE), prefixes, PAGE)
        if not rows:
            raise AssertionError(f"search {by} {q!r} found nothing")

    for key in ("name", "company", "email", "phone"):
        p50, p99 = _timed(searched, _queries(sample, key))
        out[f"search_{key}_p50_ms"] = round(p50, 2)
        out[f"search_{key}_p99_ms"] = round(p99, 2)
        out[f"search_{key}_p50_ratio"] = round(p50 / raw[0], 2) if raw[0] else None
        out[f"search_{key}_p99_ratio"] = round(p99 / raw[1], 2) if raw[1] else None
    client.close()
    return out
