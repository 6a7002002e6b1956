"""The Prometheus rules in deploy/prometheus/rules/: `promtool check rules` accepts them and
`promtool test rules` passes their unit tests (alerts fire when they should and only then;
recording rules give the expected ratios, counting shared totals once across instances).
promtool comes with Debian's prometheus package, which `make test` installs."""
import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "rules"


@pytest.fixture(scope="module")
def promtool():
    path = shutil.which("promtool")
    assert path, "promtool (Debian package prometheus) is not installed"
    return path


def run(*args):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


def test_rule_files_are_valid(promtool):
    files = sorted(RULES.glob("*.yml"))
    assert files
    result = run(promtool, "check", "rules", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_pass(promtool):
    tests = sorted((RULES / "tests").glob("*.yml"))
    assert len(tests) >= 2
    result = run(promtool, "test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout


def test_every_alert_the_issue_asks_for_is_unit_tested():
    rules = "".join(p.read_text() for p in RULES.glob("*.yml"))
    tests = "".join(p.read_text() for p in (RULES / "tests").glob("*.yml"))
    for alert in ("DealflowLeadFirstResponseSLO", "DealflowConversionDrop",
                  "DealflowTicketSlaBreachRate", "DealflowServiceDown",
                  "DealflowEventsDeadLettered", "DealflowNotificationFailureRate",
                  "DealflowWebhookSubscriptionFailing"):
        assert f"alert: {alert}" in rules
        assert f"alertname: {alert}" in tests
