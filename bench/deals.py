"""Deals: stage moves per second over HTTP with 10 concurrent clients, with one deals
instance and then with two (separate processes on the same vhost and database, the
clients spread over them as a load balancer would).

Each client owns its own deals (so no move loses an If-Match race) and moves them back and
forth between Discovery and Needs confirmed, carrying each deal's ETag to the next move.
Every move is a read, a gate check and one conditional findAndModify that also carries the
deal.stage_changed event; the relay then publishes it. After each phase the bench waits
until every outbox is empty (how long publishing trailed the load) and checks exactness:
each deal's stored stage is its last move's, and a subscriber bound to `deals.events` got
exactly one distinct deal.stage_changed per successful move of each deal. The database's
commands per second during the load (FerretDB's own counters, serverStatus) say whether
the database is the bound: writes pass one at a time, so compare them with the raw
update-by-id rate.
"""
import json
import threading
import time
import uuid
from collections import Counter

import requests
from kombu import Connection, Exchange, Queue
from pymongo import MongoClient

from bench.harness import CpuUse, DbOps, bearer, percentile

CLIENTS = 10
DEALS_PER_CLIENT = 5
ROUNDS = 2
ROUND_SECONDS = 4.0
HISTORY = 1_000  # entries of the long-lived deal
HISTORY_MOVES = 30

RATIOS = {"stage_moves_per_s": "mongo_update_by_id_per_s",
          "stage_moves_per_s_2": "mongo_update_by_id_per_s",
          "db_write_ops_per_s": "mongo_update_by_id_per_s",
          "db_write_ops_per_s_2": "mongo_update_by_id_per_s"}

STAGES = ("needs_confirmed", "discovery")


def _create(session, base, n):
    resp = session.post(f"{base}/api/v1/deals", json={
        "name": f"bench {n}", "amount": "1000.00", "currency": "EUR",
        "checklist": ["discovery_call_held"]}, timeout=30)
    resp.raise_for_status()
    return {"id": resp.json()["id"], "etag": resp.headers["ETag"], "moves": 0}


class MoveSubscriber:
    """A queue bound to deal.stage_changed, as an outside subscriber binds one."""

    def __init__(self, amqp_uri):
        self.conn = Connection(amqp_uri)
        self.queue = Queue(f"bench-moves-{uuid.uuid4().hex[:8]}", durable=False,
                           exchange=Exchange("deals.events", type="topic", durable=True),
                           routing_key="deal.stage_changed", auto_delete=False)
        self.queue(self.conn.channel()).declare()

    def distinct_by_deal(self, timeout=2.0):
        seen, per_deal = set(), Counter()
        with self.conn.SimpleQueue(self.queue) as q:
            while True:
                try:
                    msg = q.get(block=True, timeout=timeout)
                except q.Empty:
                    break
                msg.ack()
                event = msg.payload if isinstance(msg.payload, dict) else json.loads(msg.body)
                if event["id"] not in seen:
                    seen.add(event["id"])
                    per_deal[event["subject"]] += 1
        return per_deal

    def close(self):
        self.queue(self.conn.channel()).delete()
        self.conn.release()


def _load(urls, deals):
    latencies, errors = [], [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + ROUND_SECONDS

    def client(t, mine):
        base = urls[t % len(urls)]
        session = requests.Session()
        session.headers.update(bearer())
        lat, n = [], 0
        while time.monotonic() < stop_at:
            deal = mine[n % len(mine)]
            n += 1
            started = time.perf_counter()
            try:
                resp = session.post(f"{base}/api/v1/deals/{deal['id']}/stage",
                                    json={"stage": STAGES[deal["moves"] % 2]},
                                    headers={"If-Match": deal["etag"]}, timeout=30)
            except requests.RequestException:
                with lock:
                    errors[0] += 1
                continue
            if resp.status_code == 200:
                lat.append(time.perf_counter() - started)
                deal["etag"] = resp.headers["ETag"]
                deal["moves"] += 1
            else:
                with lock:
                    errors[0] += 1
        session.close()
        with lock:
            latencies.extend(lat)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(t, mine)) for t, mine in enumerate(deals)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0], time.monotonic() - started


def phase(ctx, urls, db_name, profile=None):
    """One round of moves through `urls`: (latencies, errors, seconds, database commands,
    publishing lag, exact?)."""
    with requests.Session() as session:
        session.headers.update(bearer())
        deals = [[_create(session, urls[0], t * 100 + i) for i in range(DEALS_PER_CLIENT)]
                 for t in range(CLIENTS)]
    subscriber = MoveSubscriber(ctx.amqp_uri)
    ops = DbOps(ctx.mongo_uri)
    cpu = CpuUse([*(ctx.pid_of(url) for url in urls), ctx.database_pid])
    with ctx.profiling(profile, urls[0], ROUND_SECONDS):
        latencies, errors, wall = _load(urls, deals)
    db = ops.per_second(1.0)  # counts over the round
    db["cpu"], db["load"] = cpu.percent()

    # publishing lag: until every deal's outbox is empty after the load stopped
    lag = None
    mongo = MongoClient(ctx.mongo_uri)
    coll = mongo[db_name].deals
    load_end = time.monotonic()
    while time.monotonic() < load_end + 30:
        if coll.count_documents({"outbox_since": {"$exists": True}}) == 0:
            lag = round(time.monotonic() - load_end, 2)
            break
        time.sleep(0.05)
    flat = [deal for mine in deals for deal in mine]
    stored = {d["_id"]: d["stage"] for d in coll.find({"_id": {"$in": [d["id"] for d in flat]}},
                                                     {"stage": 1})}
    mongo.close()
    published = subscriber.distinct_by_deal()
    subscriber.close()
    wrong = [d["id"] for d in flat
             if published.get(d["id"], 0) != d["moves"]
             or stored.get(d["id"]) != (STAGES[(d["moves"] - 1) % 2] if d["moves"] else
                                        "discovery")]
    return latencies, errors, wall, db, lag, not wrong


def figures(rounds, suffix):
    """The rounds of one configuration as one set of figures."""
    latencies = [x for r in rounds for x in r[0]]
    wall = sum(r[2] for r in rounds)
    lags = [r[4] for r in rounds]
    return {
        f"stage_moves_per_s{suffix}": round(len(latencies) / wall, 1),
        f"stage_move_p50_ms{suffix}": round(percentile(latencies, 50) * 1000, 2),
        f"stage_move_p99_ms{suffix}": round(percentile(latencies, 99) * 1000, 2),
        f"stage_moves{suffix}": len(latencies),
        f"stage_move_errors{suffix}": sum(r[1] for r in rounds),
        f"outbox_drained_after_load_s{suffix}": -1 if None in lags else max(lags),
        f"moves_exact{suffix}": all(r[5] for r in rounds),
        f"db_ops_per_s{suffix}": round(sum(r[3]["ops"] for r in rounds) / wall),
        f"db_write_ops_per_s{suffix}": round(sum(r[3]["writes"] for r in rounds) / wall),
        # each round's share of a core per instance and of the database, and the
        # machine's load average
        f"cpu_percent_by_instance{suffix}": [r[3]["cpu"][:-1] for r in rounds],
        f"database_cpu_percent{suffix}": [r[3]["cpu"][-1] for r in rounds],
        f"load_average{suffix}": [r[3]["load"] for r in rounds],
    }


def _long_history(session, base, entries):
    """A deal with `entries` past moves, recorded through the admin's history import
    (20 steps a call, each call at the version the last one left), within the second
    after its creation."""
    deal = _create(session, base, "history")
    time.sleep(1.0)  # steps lie between the deal's creation and now
    start = time.time() - 0.9
    version = int(deal["etag"].strip('W/"'))
    for first in range(0, entries, 20):
        steps = [{"action": "move", "stage": STAGES[i % 2],
                  "at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + i * 0.0008))
                  + f".{int((start + i * 0.0008) % 1 * 1e6):06d}Z"}
                 for i in range(first, min(first + 20, entries))]
        resp = session.post(f"{base}/api/v1/deals/history", timeout=60, json={
            "items": [{"deal_id": deal["id"], "version": version, "steps": steps}]})
        resp.raise_for_status()
        outcome = resp.json()["items"][0]
        if outcome["outcome"] != "applied":
            raise RuntimeError(f"history not recorded: {outcome}")
        version = outcome["version"]
    resp = session.get(f"{base}/api/v1/deals/{deal['id']}", timeout=30)
    resp.raise_for_status()
    return {"id": deal["id"], "etag": resp.headers["ETag"], "moves": entries}


def history_cost(url, moves=HISTORY_MOVES):
    """p50 of a move on a deal with HISTORY entries and on a new deal, interleaved (so
    the machine's load drifts alike for both), one client."""
    with requests.Session() as session:
        session.headers.update(bearer())
        old = _long_history(session, url, HISTORY)
        new = _create(session, url, "new")
        times = {"old": [], "new": []}
        for _ in range(moves):
            for label, deal in (("new", new), ("old", old)):
                started = time.perf_counter()
                resp = session.post(f"{url}/api/v1/deals/{deal['id']}/stage",
                                    json={"stage": STAGES[deal["moves"] % 2]},
                                    headers={"If-Match": deal["etag"]}, timeout=30)
                resp.raise_for_status()
                times[label].append(time.perf_counter() - started)
                deal["etag"] = resp.headers["ETag"]
                deal["moves"] += 1
    return {"move_new_p50_ms": round(percentile(times["new"], 50) * 1000, 2),
            "move_history_p50_ms": round(percentile(times["old"], 50) * 1000, 2)}


def run(ctx):
    db_name = ctx.new_database("deals")
    first = ctx.start_service("deals", MONGO_DATABASE=db_name)
    second = ctx.start_service("deals", MONGO_DATABASE=db_name)
    # one instance and two take turns, so the shared machine's load drifts alike for both
    # (in the one-instance rounds the second runs idle)
    one, two = [], []
    for n in range(ROUNDS):
        one.append(phase(ctx, [first], db_name, profile=None if n else "deals-move"))
        two.append(phase(ctx, [first, second], db_name))
    out = {**figures(one, ""), **figures(two, "_2")}
    out["two_vs_one_instance"] = round(out["stage_moves_per_s_2"] / out["stage_moves_per_s"], 3)
    out.update(history_cost(first))
    return out
