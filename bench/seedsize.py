"""`make seed`'s pace at a size one can wait for, with the raw insert rate of the same run.

    MONGO_URI=... python -m bench.seedsize 5000     # SEED_METRICS=0: without metrics

Starts leads, deals and metrics as `nameko run` processes (databases and a vhost of the
run's own), measures the database's raw insert rate, then runs `bench.seed` with N leads
and reports leads/s, the ratio to raw inserts, the CPU seconds each process (and the
database, by the pid listening on MONGO_URI's port) used during the seed, how long the
relays took after it to empty every outbox, and the CPU per lead until then. It runs
leads, deals and metrics only: `make seed` on `make run` also feeds quotes, support,
notify, webhooks and the streams, and costs more per lead. BENCH_PROFILE=1 records py-spy profiles
of the three services while the seed runs (var/profile/seed-<service>.txt).
"""
import json
import os
import sys
import time

from bench import idle, profiles, raw
from bench.harness import ROOT, Context, DbOps, bearer
from bench.seed import seed


def run(ctx, n, with_metrics=True, workers=None):
    out = {"n": n}
    out.update(raw.mongo(ctx))
    names = ("leads", "deals") + (("metrics",) if with_metrics else ())
    urls = {name: ctx.start_service(name) for name in names}
    pids = {name: ctx.pid_of(url) for name, url in urls.items()}
    if ctx.database_pid:
        pids["database"] = ctx.database_pid
    pids["seeder"] = os.getpid()
    token = bearer()["Authorization"].split(" ", 1)[1]
    before = {name: idle._cpu_seconds(pid) for name, pid in pids.items()}
    commands = DbOps(ctx.mongo_uri)
    expected = float(os.environ.get("SEED_PROFILE_SECONDS", max(30, n / 50)))
    started = time.monotonic()
    with _profiled(ctx, urls, expected):
        report = seed(n, urls["leads"], urls["deals"], token=token,
                      **({"workers": workers} if workers else {}),
                      log=lambda line: print(line, flush=True))
        # before the profiles are collected (their samplers may run on a while)
        seconds = time.monotonic() - started
        cpu = {name: round(idle._cpu_seconds(pid) - before[name], 1)
               for name, pid in pids.items()}
        counted = commands._read()
    out.update(seed_seconds=round(seconds, 1), seed_leads_per_s=round(n / seconds, 1),
               seed_phases_seconds=report["seconds"], seed_created=report["leads"]["created"],
               seed_deals=report["deals"], cpu_seconds_during_seed=cpu)
    # per lead: what each lead cost the database, whatever the machine's load
    out["db_commands_per_lead"] = {
        name: round((counted[name] - commands.before.get(name, 0)) / n, 2)
        for name in sorted(counted) if counted[name] > commands.before.get(name, 0)}
    commands.client.close()
    out["cpu_ms_per_lead"] = {name: round(1000 * s / n, 2) for name, s in cpu.items()}
    out["seed_leads_per_s_over_raw_insert"] = round(
        out["seed_leads_per_s"] / out["mongo_insert_per_s"], 3)
    idle._wait_until_relayed(urls["leads"], timeout=1800)
    idle._wait_until_relayed(urls["deals"], timeout=1800)
    out["relayed_after_seed_seconds"] = round(time.monotonic() - started - seconds, 1)
    # the relays' backlog is part of the seed's cost: a figure that stops at the seed's
    # return leaves out the events still waiting to be published and cleared
    out["cpu_ms_per_lead_until_relayed"] = {
        name: round(1000 * (idle._cpu_seconds(pid) - before[name]) / n, 2)
        for name, pid in pids.items()}
    out["profiles"] = {name: profiles.top(ROOT / path, 12) for name, path in ctx.profiles.items()}
    return out


class _profiled:
    """py-spy on every service while the seed runs (BENCH_PROFILE=1), else nothing."""

    def __init__(self, ctx, urls, seconds):
        self.blocks = [ctx.profiling(f"seed-{name}", url, seconds)
                       for name, url in urls.items()]

    def __enter__(self):
        for block in self.blocks:
            block.__enter__()

    def __exit__(self, *exc):
        for block in reversed(self.blocks):
            block.__exit__(*exc)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    n = int(argv[0]) if argv else 5000
    ctx = Context()
    try:
        out = run(ctx, n, os.environ.get("SEED_METRICS", "1") != "0",
                  int(os.environ["SEED_WORKERS"]) if os.environ.get("SEED_WORKERS") else None)
    finally:
        ctx.close()
    print(json.dumps(out, indent=2), flush=True)


if __name__ == "__main__":
    main()
