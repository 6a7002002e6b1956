"""Prometheus out: a real Prometheus (Debian's package) scrapes the metrics service, run as
a `nameko run` process, every second, with deploy/prometheus/rules loaded. After a scripted
funnel (with duplicates and out-of-order deliveries), every expression of every dashboard
panel and every recording rule returns data, and the recorded conversion rates equal the
expected ones."""
import contextlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
import yaml

from kit.amqp import ConfirmingPublisher
from tests.conftest import free_port
from tests.integration.metrics import metrics_script as script
from tests.support import wait
from tests.support.platform import Platform

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "dealflow.json"
# Grafana's variables, as Grafana would expand them for a short range.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1s", "$__range": "10m"}


def wait_for(predicate, timeout, what):
    """The shared poll, failing the test with `what` at the deadline."""
    value = wait.wait_for(predicate, timeout, interval=0.2, ignore=(requests.RequestException,))
    assert value, f"timed out waiting for {what}"
    return value


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def metrics_process(rabbit_config, mongo_db_name):
    platform = Platform(rabbit_config["AMQP_URI"], services=("metrics",),
                        databases={"metrics": mongo_db_name}, KPIS_REFRESH_SECONDS=1,
                        LOG_LEVEL="WARNING")
    base = platform.start(timeout=30).urls["metrics"]
    try:
        wait_for(lambda: "dealflow_metrics_projections_loaded 1.0"
                 in requests.get(base + "/metrics", timeout=2).text, 30, "metrics service")
        yield urlparse(base).port
    finally:
        platform.stop()


@pytest.fixture
def prometheus(metrics_process, tmp_path):
    with running_prometheus({"metrics": [metrics_process]}, tmp_path) as api:
        yield api


@contextlib.contextmanager
def running_prometheus(jobs, workdir):
    """A Prometheus scraping {job: [ports]} on 127.0.0.1 every second (label service=job),
    with deploy/prometheus/rules loaded; yields its API."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus (Debian package) is not installed"
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES / "*.yml")],
        "scrape_configs": [{"job_name": job, "static_configs": [{
            "targets": [f"127.0.0.1:{p}" for p in ports], "labels": {"service": job}}]}
            for job, ports in jobs.items()],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = open(workdir / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [binary, f"--config.file={workdir / 'prometheus.yml'}",
         f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT)
    api = Prometheus(f"http://127.0.0.1:{port}")
    try:
        wait_for(lambda: requests.get(api.base + "/-/ready", timeout=2).ok, 30, "prometheus")
        yield api
    finally:
        stop(proc)
        log.close()


class Prometheus:
    def __init__(self, base):
        self.base = base

    def query(self, expr):
        resp = requests.get(self.base + "/api/v1/query", params={"query": expr}, timeout=10)
        body = resp.json()
        assert resp.ok and body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def value(self, expr):
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


def panel_expressions():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = []
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            assert not re.search(r"\$\w", expr), f"unexpanded variable in {expr}"
            exprs.append((panel["title"], expr))
    return exprs


def recording_rules():
    rules = []
    # the rules over the metrics service's series (notify's are over notify's own, which
    # this platform does not run; promtool tests them in deploy/prometheus/rules/tests)
    for path in sorted(p for p in RULES.glob("*.yml") if p.name != "notify.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(r for r in group["rules"] if "record" in r)
    return rules


def test_dashboard_and_rules_on_a_real_prometheus(prometheus, rabbit_config):
    # a few scrapes of the empty state first, so that increase() has a baseline
    wait_for(lambda: (prometheus.value('count_over_time(up{job="metrics"}[1m])') or 0) >= 3,
             30, "first scrapes")
    assert prometheus.value('up{job="metrics"}') == 1

    events = script.build()
    order, dups = script.deliveries(events)
    publisher = ConfirmingPublisher(rabbit_config["AMQP_URI"])
    try:
        publisher.publish_batch([(*script.routed(b), b, {}) for b in order])
    finally:
        publisher.close()
    wait_for(lambda: prometheus.value("sum(max by (type) (dealflow_events_applied_total))")
             == len(events), 30, "every event applied, as scraped")
    # the recorded ratios of an evaluation after that scrape
    wait_for(lambda: prometheus.value("dealflow:funnel_overall_conversion:ratio")
             == script.OVERALL_CONVERSION, 15, "recording rules")

    # each rule group evaluates on its own tick: a panel over another group's recorded
    # series has data once that group ran after the scrape
    def panels_without_data():
        return [(title, expr) for title, expr in panel_expressions()
                if not prometheus.query(expr)]
    wait_for(lambda: not panels_without_data(), 15, 0.5)
    empty = panels_without_data()
    assert empty == [], "dashboard expressions without data"
    empty = [rule["record"] for rule in recording_rules() if not prometheus.query(rule["expr"])]
    assert empty == [], "recording rules without data"

    got = {(s["metric"]["from"], s["metric"]["to"]): float(s["value"][1])
           for s in prometheus.query("dealflow:funnel_conversion:ratio")}
    assert got == script.CONVERSION
    assert prometheus.value("dealflow:deal_win:ratio") == script.WIN_RATE
    entered = {s["metric"]["stage"]: float(s["value"][1])
               for s in prometheus.query("dealflow:funnel_entered:max")}
    assert entered == script.ENTERED
