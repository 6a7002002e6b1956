"""Start-up: seconds from spawning `nameko run` to the first `/readyz` 200 of leads, deals
and metrics (each on a database of its own with nothing in it), next to a bare nameko
service's spawn to its first HTTP 200 (bench/bare.py), started in turns (bare, leads,
bare, deals, ...) so that both see the same load of the shared machine; medians of
ROUNDS starts each. Each process is stopped before the next starts.

The code is compiled first, as the image ships it (deploy/Dockerfile): where bytecode is
not written (PYTHONDONTWRITEBYTECODE, read-only code), each start would compile every
module of services/ it imports before anything else, and the figure would say more about
that than about the start. The queues exist when the full bench comes here (the services'
own benchmarks declared them); alone, each service's first round declares them.
"""
import compileall
import statistics

from bench.harness import ROOT
from bench.raw import BARE_CONFIG

ROUNDS = 3  # the median of two was their mean: one slow start moved it half its excess
SERVICES = ("leads", "deals", "metrics")


def _timed(ctx, url):
    seconds = next(s["start_s"] for s in ctx.started if s["url"] == url)
    ctx.stop(url)
    return seconds


def run(ctx):
    for folder in ("services", "bench"):
        compileall.compile_dir(ROOT / folder, quiet=1)
    bare, services = [], {name: [] for name in SERVICES}
    for _ in range(ROUNDS):
        for name in SERVICES:
            bare.append(_timed(ctx, ctx.start_process(
                "bare_source", "bench.bare:BareSource", BARE_CONFIG, "/ok", {})))
            services[name].append(_timed(ctx, ctx.start_service(
                name, MONGO_DATABASE=ctx.new_database(f"start_{name}"))))
    out = {"bare_start_s": round(statistics.median(bare), 2)}
    for name, seconds in services.items():
        out[f"{name}_start_s"] = round(statistics.median(seconds), 2)
        out[f"{name}_start_vs_bare"] = round(statistics.median(seconds) / out["bare_start_s"], 2)
    return out
