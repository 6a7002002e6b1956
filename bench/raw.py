"""Raw limits of the broker, the database and a trivial HTTP endpoint, measured in the same
run, so that service figures can be given as ratios to them."""
import threading
import time
import uuid

import amqp
import requests
from kombu import Connection
from pymongo import MongoClient

from bench.harness import ROOT, percentile

N_MSGS = 5000


def rabbit(ctx):
    out = {}
    with Connection(ctx.amqp_uri) as conn:
        ch = conn.channel()
        ch.queue_declare("bench.raw", durable=True, auto_delete=False,
                         arguments={"x-queue-version": 2})
        ch.queue_purge("bench.raw")
        body = b'{"specversion":"1.0","type":"bench","data":{"x":"' + b"y" * 300 + b'"}}'
        ch.confirm_select()
        acked = [0]
        ch.events["basic_ack"].add(lambda tag, multiple: acked.__setitem__(0, tag))
        # one confirm per message
        t0 = time.perf_counter()
        for tag in range(1, 1001):
            ch.basic_publish(amqp.Message(body, delivery_mode=2), "", "bench.raw")
            while acked[0] < tag:
                conn.drain_events(timeout=10)
        out["amqp_publish_confirm_each_per_s"] = round(1000 / (time.perf_counter() - t0))
        # batches of 500, confirmed per batch
        base = acked[0]
        t0 = time.perf_counter()
        for b in range(N_MSGS // 500):
            for _ in range(500):
                ch.basic_publish(amqp.Message(body, delivery_mode=2), "", "bench.raw")
            target = base + (b + 1) * 500
            while acked[0] < target:
                conn.drain_events(timeout=10)
        out["amqp_publish_confirm_batch500_per_s"] = round(N_MSGS / (time.perf_counter() - t0))
        # consume with acks
        got = [0]

        def on_msg(msg):
            got[0] += 1
            ch.basic_ack(msg.delivery_tag)

        ch.basic_qos(0, 200, False)
        ch.basic_consume("bench.raw", callback=on_msg)
        t0 = time.perf_counter()
        total = N_MSGS + 1000
        while got[0] < total:
            conn.drain_events(timeout=10)
        out["amqp_consume_ack_per_s"] = round(total / (time.perf_counter() - t0))
        ch.queue_delete("bench.raw")
    return out


def mongo(ctx, threads=10, n=2000):
    client = MongoClient(ctx.mongo_uri, maxPoolSize=threads * 2)
    name = ctx.new_database("raw")
    coll = client[name].raw
    coll.insert_one({"_id": "warm"})
    out = {}

    def run(fn):
        lat = []
        lock = threading.Lock()
        per = n // threads

        def work(t):
            mine = []
            for i in range(per):
                s = time.perf_counter()
                fn(t, i)
                mine.append(time.perf_counter() - s)
            with lock:
                lat.extend(mine)

        t0 = time.perf_counter()
        ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return round(len(lat) / (time.perf_counter() - t0)), percentile(lat, 99) * 1000

    ids = [[str(uuid.uuid4()) for _ in range(n // threads)] for _ in range(threads)]
    out["mongo_insert_per_s"], out["mongo_insert_p99_ms"] = run(
        lambda t, i: coll.insert_one({"_id": ids[t][i], "email": f"{t}-{i}@x.io", "n": 0}))
    out["mongo_find_by_id_per_s"], _ = run(lambda t, i: coll.find_one({"_id": ids[t][i]}))
    out["mongo_update_by_id_per_s"], _ = run(
        lambda t, i: coll.update_one({"_id": ids[t][i]}, {"$inc": {"n": 1}}))
    out["mongo_insert_p99_ms"] = round(out["mongo_insert_p99_ms"], 2)
    client.close()
    return out


def http(ctx):
    url = ctx.start_service("support")  # /healthz: the cost of the kit's HTTP path alone
    result = ctx.http_load("GET", url + "/healthz", clients=10, duration=4)
    return {"http_healthz_per_s": result["rps"], "http_healthz_p99_ms": result["p99_ms"]}


# --- nameko's own limits (bench/bare.py) ------------------------------------------------------

BARE_CONFIG = ROOT / "bench" / "bare.yml"
HOP_EVENTS = 2000
HOP_DISPATCHERS = 4


def _hop(ctx, source, sink, dispatchers, per_dispatcher):
    """Events/s from the first dispatch to the last handling, and each event's latency."""
    requests.post(sink + "/reset", timeout=10).raise_for_status()
    threads = [threading.Thread(target=lambda: requests.post(
        f"{source}/fire/{per_dispatcher}", timeout=120).raise_for_status())
        for _ in range(dispatchers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = dispatchers * per_dispatcher
    deadline = time.monotonic() + 60
    while len(seen := requests.get(sink + "/stats", timeout=10).json()) < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"bare hop: {len(seen)} of {total} events arrived")
        time.sleep(0.05)
    first = min(sent for sent, _ in seen)
    last = max(got for _, got in seen)
    return total / (last - first), [got - sent for sent, got in seen]


def nameko(ctx):
    """nameko's bare event hop, a trivial `@http` route and a bare service's start-up."""
    out = {}
    source = ctx.start_process("bare_source", "bench.bare:BareSource", BARE_CONFIG, "/ok", {})
    sink = ctx.start_process("bare_sink", "bench.bare:BareSink", BARE_CONFIG, "/ok", {})
    out["nameko_start_s"] = round(ctx.started[-2]["start_s"], 3)
    # the sink answers HTTP before its consumer has bound its queue, and an event
    # dispatched before that is dropped (nothing routes it): fire until one arrives
    deadline = time.monotonic() + 60
    while not requests.get(sink + "/stats", timeout=10).json():
        if time.monotonic() > deadline:
            raise RuntimeError("the bare sink never received an event")
        requests.post(f"{source}/fire/1", timeout=30).raise_for_status()
        time.sleep(0.1)
    _hop(ctx, source, sink, 1, 200)  # warm: connections, first confirms
    # latency: one dispatcher, so each event goes alone (no queueing behind others)
    rate, latencies = _hop(ctx, source, sink, 1, HOP_EVENTS)
    out["hop_one_dispatcher_per_s"] = round(rate)
    out["hop_p50_ms"] = round(percentile(latencies, 50) * 1000, 2)
    out["hop_p99_ms"] = round(percentile(latencies, 99) * 1000, 2)
    # throughput: several dispatching workers keep the handler busy
    rate, _ = _hop(ctx, source, sink, HOP_DISPATCHERS, HOP_EVENTS // HOP_DISPATCHERS)
    out["hop_events_per_s"] = round(rate)
    load = ctx.http_load("GET", source + "/ok", clients=10, duration=4)
    out["nameko_http_per_s"] = load["rps"]
    out["nameko_http_p99_ms"] = load["p99_ms"]
    return out
