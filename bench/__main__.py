"""`make bench`: raw limits and nameko's own anchors first, then each service's figures as
ratios to them, all in one run; writes var/bench-report.json and var/bench-report.md.

Each service benchmark is bench/<service>.py with `run(ctx) -> {name: number}`; a module
may also give `RATIOS = {figure: raw_limit}` to say which raw limit a figure compares to.
bench/report.py holds issue 13's targets: which anchor each figure depends on.
`python -m bench leads deals` runs some only; BENCH_PROFILE=1 adds py-spy profiles of the
hot paths (var/profile/). The figures at size (100,000 leads, 1,000,000 events, idle CPU)
run apart: `python -m bench atsize`, `python -m bench search`, `python -m bench idle`.
"""
import importlib
import json
import sys
import time
from pathlib import Path

from bench.harness import ROOT

sys.path.insert(0, str(ROOT / "services"))  # `python -m bench` works without make too

from bench import profiles, raw, report  # noqa: E402
from bench.harness import Context  # noqa: E402

SERVICES = ["leads", "deals", "metrics", "pipeline", "startup", "notify", "quote_documents",
            "quotes", "support"]
ANCHOR_PROCESSES = ("bare_source", "bare_sink")  # nameko's own, not ours


def processes(ctx):
    """Start-up seconds and resident memory of every service process, as name#instance."""
    start, rss, count = {}, {}, {}
    resident = ctx.resident_mb()
    for s in ctx.started:
        if s["name"] in ANCHOR_PROCESSES:
            continue
        count[s["name"]] = count.get(s["name"], 0) + 1
        label = f"{s['name']}#{count[s['name']]}"
        start[label] = round(s["start_s"], 2)
        mb = resident.get(f"{s['name']}@{s['url'].rsplit(':', 1)[1]}")
        if mb is not None:
            rss[label] = mb
    return {"start": start, "rss": rss}


def main(only=None):
    (ROOT / "var" / "log").mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    ctx = Context()
    out = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "raw": {}}
    try:
        print("raw limits ...", flush=True)
        out["raw"].update(raw.rabbit(ctx))
        out["raw"].update(raw.mongo(ctx))
        out["raw"].update(raw.http(ctx))
        out["raw"].update(raw.nameko(ctx))
        print(json.dumps(out["raw"], indent=2), flush=True)
        for name in only or SERVICES:
            path = Path(__file__).with_name(f"{name}.py")
            if not path.exists():
                print(f"{name}: no benchmark yet", flush=True)
                continue
            module = importlib.import_module(f"bench.{name}")
            print(f"{name} ...", flush=True)
            section = time.monotonic()
            figures = module.run(ctx)
            ratios = {}
            for figure, limit in getattr(module, "RATIOS", {}).items():
                if figure in figures and out["raw"].get(limit):
                    ratios[f"{figure} / {limit}"] = round(figures[figure] / out["raw"][limit], 3)
            out[name] = {"figures": figures, "ratios": ratios,
                         "seconds": round(time.monotonic() - section, 1)}
            print(json.dumps(out[name], indent=2), flush=True)
        out["processes"] = processes(ctx)
        out["profiles"] = {name: profiles.top(ROOT / path) for name, path in ctx.profiles.items()}
    finally:
        ctx.close()
    out["seconds"] = round(time.monotonic() - began, 1)
    (ROOT / "var" / "bench-report.json").write_text(json.dumps(out, indent=2))
    (ROOT / "var" / "bench-report.md").write_text(report.markdown(out))
    print(report.markdown(out))
    print("report: var/bench-report.json, var/bench-report.md "
          "(python -m bench.report puts its table into the README)")


if __name__ == "__main__":
    main(sys.argv[1:] or None)
