"""`make bench`: raw limits first, then each service's figures as ratios to them.

Each service benchmark is bench/<service>.py with `run(ctx) -> {name: number}`; a module
may also give `RATIOS = {figure: raw_limit}` to say which raw limit a figure compares to.
"""
import importlib
import json
import sys
import time
from pathlib import Path

from bench.harness import ROOT

sys.path.insert(0, str(ROOT / "services"))  # `python -m bench` works without make too

from bench import raw  # noqa: E402
from bench.harness import Context  # noqa: E402

SERVICES = ["leads", "deals", "metrics", "search", "notify", "idle", "quote_documents",
            "quotes", "support"]


def main(only=None):
    (ROOT / "var" / "log").mkdir(parents=True, exist_ok=True)
    ctx = Context()
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "raw": {}}
    try:
        print("raw limits ...", flush=True)
        report["raw"].update(raw.rabbit(ctx))
        report["raw"].update(raw.mongo(ctx))
        report["raw"].update(raw.http(ctx))
        print(json.dumps(report["raw"], indent=2), flush=True)
        for name in only or SERVICES:
            path = Path(__file__).with_name(f"{name}.py")
            if not path.exists():
                print(f"{name}: no benchmark yet", flush=True)
                continue
            module = importlib.import_module(f"bench.{name}")
            print(f"{name} ...", flush=True)
            figures = module.run(ctx)
            ratios = {}
            for figure, limit in getattr(module, "RATIOS", {}).items():
                if figure in figures and report["raw"].get(limit):
                    ratios[f"{figure} / {limit}"] = round(figures[figure] / report["raw"][limit], 3)
            report[name] = {"figures": figures, "ratios": ratios}
            print(json.dumps(report[name], indent=2), flush=True)
    finally:
        ctx.close()
    out = ROOT / "var" / "bench-report.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"report: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:] or None)
