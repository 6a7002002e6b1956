"""Deals: stage moves per second over HTTP with 10 concurrent clients.

Each client owns its own deals (so no move loses an If-Match race) and moves them back and
forth between Discovery and Needs confirmed, carrying each deal's ETag to the next move.
Every move is a read, a gate check and one conditional findAndModify that also carries the
deal.stage_changed event; the relay then publishes it. Afterwards the bench waits until
every outbox is empty and reports how long publishing trailed the load.
"""
import threading
import time

import requests
from pymongo import MongoClient

from bench.harness import bearer, percentile

CLIENTS = 10
DEALS_PER_CLIENT = 5
DURATION = 8.0

RATIOS = {"stage_moves_per_s": "http_healthz_per_s",
          "stage_moves_per_s_vs_mongo": "mongo_update_by_id_per_s"}

STAGES = ("needs_confirmed", "discovery")


def _create(session, base, n):
    resp = session.post(f"{base}/api/v1/deals", json={
        "name": f"bench {n}", "amount": "1000.00", "currency": "EUR",
        "checklist": ["discovery_call_held"]}, timeout=30)
    resp.raise_for_status()
    return {"id": resp.json()["id"], "etag": resp.headers["ETag"], "moves": 0}


def run(ctx):
    db_name = ctx.new_database("deals")
    base = ctx.start_service("deals", MONGO_DATABASE=db_name)
    deals = []
    with requests.Session() as session:
        session.headers.update(bearer())
        for t in range(CLIENTS):
            deals.append([_create(session, base, t * 100 + i) for i in range(DEALS_PER_CLIENT)])

    latencies, errors = [], [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + DURATION

    def client(mine):
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
    threads = [threading.Thread(target=client, args=(mine,)) for mine in deals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started

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
    mongo.close()

    moves = len(latencies)
    return {
        "stage_moves_per_s": round(moves / wall, 1),
        "stage_moves_per_s_vs_mongo": round(moves / wall, 1),
        "stage_move_p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "stage_move_p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "stage_moves": moves,
        "stage_move_errors": errors[0],
        "outbox_drained_after_load_s": lag if lag is not None else -1,
    }

