"""Deals: stage moves per second over HTTP with 10 concurrent clients.

Each client owns its own deals (so no move loses an If-Match race) and moves them back and
forth between Discovery and Needs confirmed, carrying each deal's ETag to the next move.
Every move is a read, a gate check and one conditional findAndModify that also carries the
deal.stage_changed event; the relay then publishes it. Afterwards the bench waits until
every outbox is empty and reports how long publishing trailed the load.

Then the cost of a move against a deal's past: a deal with 1,000 history entries (loaded
through the admins' history route) and a new deal take turns, one move at a time, and the
bench reports the ratio of their median move times (target <= 1.5: the history lives in
buckets, kit.buckets, so a move does not carry it).
"""
import datetime as dt
import statistics
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
HISTORY_ENTRIES = 1000
STEPS_PER_ITEM = 20  # the history route's limit per item
TURNS = 150


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
    history = _history_cost(base, coll_of=lambda: MongoClient(ctx.mongo_uri)[db_name].deals)
    return {
        **history,
        "stage_moves_per_s": round(moves / wall, 1),
        "stage_moves_per_s_vs_mongo": round(moves / wall, 1),
        "stage_move_p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "stage_move_p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "stage_moves": moves,
        "stage_move_errors": errors[0],
        "outbox_drained_after_load_s": lag if lag is not None else -1,
    }



def _history_cost(base, coll_of):
    """Median move time on a deal with HISTORY_ENTRIES entries over that on a new deal."""
    session = requests.Session()
    session.headers.update(bearer())
    old, new = _create(session, base, 9001), _create(session, base, 9002)
    created = dt.datetime.fromisoformat(
        session.get(f"{base}/api/v1/deals/{old['id']}", timeout=30).json()["created_at"])
    time.sleep(0.01)  # the steps lie after the creation and not in the future
    items, version = [], 1
    for item in range(HISTORY_ENTRIES // STEPS_PER_ITEM):
        steps = [{"at": (created + dt.timedelta(microseconds=(item * STEPS_PER_ITEM + n) * 10))
                  .isoformat(), "action": "move",
                  "stage": STAGES[(item * STEPS_PER_ITEM + n) % 2]}
                 for n in range(STEPS_PER_ITEM)]
        items.append({"deal_id": old["id"], "version": version, "steps": steps})
        version += STEPS_PER_ITEM
    resp = session.post(f"{base}/api/v1/deals/history", json={"items": items}, timeout=120)
    resp.raise_for_status()
    applied = [i["outcome"] for i in resp.json()["items"]]
    shown = session.get(f"{base}/api/v1/deals/{old['id']}", timeout=30)
    old.update(etag=shown.headers["ETag"], moves=HISTORY_ENTRIES)
    coll = coll_of()
    deadline = time.monotonic() + 60
    while coll.count_documents({"outbox_since": {"$exists": True}}) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    coll.database.client.close()
    times = {old["id"]: [], new["id"]: []}
    for _ in range(TURNS):
        for deal in (old, new):
            started = time.perf_counter()
            resp = session.post(f"{base}/api/v1/deals/{deal['id']}/stage",
                                json={"stage": STAGES[deal["moves"] % 2]},
                                headers={"If-Match": deal["etag"]}, timeout=30)
            if resp.status_code == 200:
                times[deal["id"]].append(time.perf_counter() - started)
                deal["etag"] = resp.headers["ETag"]
                deal["moves"] += 1
    session.close()
    on_old, on_new = (statistics.median(times[d["id"]] or [0]) for d in (old, new))
    return {
        "history_entries_loaded": sum(STEPS_PER_ITEM for a in applied if a == "applied") + 1,
        "move_ms_new_deal": round(on_new * 1000, 2),
        "move_ms_deal_1000_history": round(on_old * 1000, 2),
        "move_cost_1000_history_vs_new": round(on_old / on_new, 2) if on_new else -1,
    }
