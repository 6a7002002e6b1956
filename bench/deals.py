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

from bench.harness import DbOps, bearer, percentile

CLIENTS = 10
DEALS_PER_CLIENT = 5
DURATION = 8.0

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
    stop_at = time.monotonic() + DURATION

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


def phase(ctx, urls, db_name, suffix):
    with requests.Session() as session:
        session.headers.update(bearer())
        deals = [[_create(session, urls[0], t * 100 + i) for i in range(DEALS_PER_CLIENT)]
                 for t in range(CLIENTS)]
    subscriber = MoveSubscriber(ctx.amqp_uri)
    ops = DbOps(ctx.mongo_uri)
    with ctx.profiling("deals-move" if len(urls) == 1 else None, urls[0], DURATION):
        latencies, errors, wall = _load(urls, deals)
    db = ops.per_second(wall)

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
    moves = len(latencies)
    return {
        f"stage_moves_per_s{suffix}": round(moves / wall, 1),
        f"stage_move_p50_ms{suffix}": round(percentile(latencies, 50) * 1000, 2),
        f"stage_move_p99_ms{suffix}": round(percentile(latencies, 99) * 1000, 2),
        f"stage_moves{suffix}": moves,
        f"stage_move_errors{suffix}": errors,
        f"outbox_drained_after_load_s{suffix}": lag if lag is not None else -1,
        f"moves_exact{suffix}": not wrong,
        f"db_ops_per_s{suffix}": db["ops"],
        f"db_write_ops_per_s{suffix}": db["writes"],
    }


def run(ctx):
    db_name = ctx.new_database("deals")
    first = ctx.start_service("deals", MONGO_DATABASE=db_name)
    out = phase(ctx, [first], db_name, "")
    second = ctx.start_service("deals", MONGO_DATABASE=db_name)
    out.update(phase(ctx, [first, second], db_name, "_2"))
    out["two_vs_one_instance"] = round(out["stage_moves_per_s_2"] / out["stage_moves_per_s"], 3)
    return out
