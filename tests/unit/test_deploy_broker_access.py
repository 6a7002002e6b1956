"""deploy/rabbitmq/access.py without a broker: the permission rules of every service, and
where passwords come from (tests/integration/test_broker_permissions.py applies the rules
to a real broker)."""
import importlib.util
import re
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("access", ROOT / "deploy/rabbitmq/access.py")
access = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(access)


@pytest.mark.parametrize("service", access.SERVICES)
def test_a_service_writes_only_its_own_exchange(service):
    rules = access.permissions(service)
    assert all(rule.startswith("^(") or rule == "^$" for rule in rules.values())
    for other in access.SERVICES:
        writable = re.match(rules["write"], f"{other}.events") is not None
        assert writable == (other == service), other


@pytest.mark.parametrize("service", access.SERVICES)
def test_a_service_reads_what_it_consumes_and_its_own_queues_only(service):
    rules = access.permissions(service)
    for other in access.SERVICES:
        readable = re.match(rules["read"], f"{other}.events") is not None
        # its own exchange too: binding its stream to it (kit.streams) reads it
        assert readable == (other in access.CONSUMES[service] or other == service), other
        # only the logs it replays (metrics rebuilds, webhooks delivers from them)
        reads_stream = other in access.READS_STREAMS.get(service, ())
        assert (re.match(rules["read"], f"{other}.events.stream") is not None) == reads_stream
        queue = f"evt-leads-lead.converted--{other}.handle_leads_lead_converted"
        for name in (queue, queue + ".retry.1", queue + ".dlq"):
            mine = other == service and bool(access.CONSUMES[service])
            assert (re.match(rules["read"], name) is not None) == mine, name
            assert (re.match(rules["configure"], name) is not None) == mine, name


@pytest.mark.parametrize("service", access.SERVICES)
def test_a_service_declares_its_own_stream_only(service):
    rules = access.permissions(service)
    for other in access.SERVICES:
        for rule in ("configure", "write"):
            mine = re.match(rules[rule], f"{other}.events.stream") is not None
            assert mine == (other == service), (rule, other)


def test_only_consumers_may_publish_retries_through_the_default_exchange():
    assert not re.match(access.permissions("leads")["write"], "amq.default")
    assert re.match(access.permissions("deals")["write"], "amq.default")


def test_passwords_from_the_environment(monkeypatch):
    monkeypatch.setenv("RABBITMQ_LEADS_PASSWORD", "s3cret-leads")
    args = Namespace(password_env=True, password_dir=None)
    assert access.passwords_from(args, ["leads"]) == {"leads": "s3cret-leads"}


def test_passwords_from_files(tmp_path):
    (tmp_path / "deals.password").write_text("s3cret-deals\n")
    args = Namespace(password_env=False, password_dir=str(tmp_path))
    assert access.passwords_from(args, ["deals"]) == {"deals": "s3cret-deals"}


def test_a_missing_password_stops_everything(monkeypatch, tmp_path):
    monkeypatch.delenv("RABBITMQ_METRICS_PASSWORD", raising=False)
    with pytest.raises(SystemExit, match="RABBITMQ_METRICS_PASSWORD"):
        access.passwords_from(Namespace(password_env=True, password_dir=None), ["metrics"])
    with pytest.raises(SystemExit, match="metrics.password"):
        access.passwords_from(Namespace(password_env=False, password_dir=str(tmp_path)),
                              ["metrics"])


def test_no_admin_no_run(monkeypatch):
    monkeypatch.delenv("RABBITMQ_ADMIN_PASSWORD", raising=False)
    with pytest.raises(SystemExit, match="admin user and password"):
        access.main(["--api", "http://127.0.0.1:9", "--admin-user", "root",
                     "--password-env"])
