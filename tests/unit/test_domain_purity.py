"""Domain modules hold rules only: importing one loads no database, broker, web or schema
library (and so no HTTP status either: their errors are the kit's status-free ones)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = ["leads.domain", "leads.scoring", "leads.assignment", "leads.forms", "deals.domain",
           "deals.pipelines", "deals.forecast", "metrics.domain", "quotes.domain",
           "quotes.pricing", "quotes.lifecycle", "quotes.approvals", "quotes.contracts",
           "support.worktime", "support.sla", "support.domain", "support.dispatch",
           "support.delivery",
           "leads.keys", "leads.search", "leads.editing", "leads.accounts", "deals.activities",
           "kit.activities", "kit.customfields", "deals.fields", "kit.reasons", "kit.textkeys",
           "kit.prefixsearch", "deals.search"]
IO = ("pymongo", "bson", "nameko", "kombu", "eventlet", "werkzeug", "marshmallow", "requests")


@pytest.mark.parametrize("module", DOMAINS)
def test_a_domain_module_imports_no_io(module):
    probe = (f"import sys, json, {module}; "
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))")
    loaded = json.loads(subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env={"PYTHONPATH": str(ROOT / "services")},
        capture_output=True, text=True, check=True).stdout)
    assert not set(loaded) & set(IO), f"{module} loads {sorted(set(loaded) & set(IO))}"
