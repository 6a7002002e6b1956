"""A service's start imports only what serving needs at once: libraries that one route
alone uses (the OpenAPI generator, the HTTP client of the deal timeline, the phone number
metadata of lead capture and search) are imported by that route, so they do not lengthen
every start (issue 13: start ≤ 2 × a bare nameko service's)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["leads.service", "deals.service", "metrics.service", "quotes.service",
            "support.service", "webhooks.service"]
ONE_ROUTE_ONLY = ("apispec", "requests", "phonenumbers")


@pytest.mark.parametrize("module", SERVICES)
def test_a_service_module_leaves_one_route_libraries_for_their_route(module):
    probe = (f"import sys, json, {module}; "
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))")
    loaded = json.loads(subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "services"), "EVENTLET_NO_GREENDNS": "yes",
             "PYTHONWARNINGS": "ignore"},
        capture_output=True, text=True, check=True).stdout)
    assert not set(loaded) & set(ONE_ROUTE_ONLY), (
        f"{module} loads {sorted(set(loaded) & set(ONE_ROUTE_ONLY))}")
