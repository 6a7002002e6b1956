"""Rules, recipients, channels and the notifications an event plans."""
import datetime as dt
import json
import subprocess
import sys

import pytest
import yaml

from kit.errors import Invalid
from notify import domain
from notify.people import Directory
from notify.rules import effective, parse_rule, parse_rules
from tests.conftest import ROOT

NOW = dt.datetime(2026, 5, 4, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
PEOPLE = {
    "ann": {"name": "王芳", "email": "ann@example.com", "phone": "+8613800000001",
            "team": "gc", "manager": "max", "locale": "zh-CN", "roles": ["rep"]},
    "max": {"name": "Max", "email": "max@example.com", "locale": "en", "roles": ["manager"]},
    "eve": {"name": "Eve", "email": "eve@example.com", "roles": ["manager"],
            "quiet_hours": {"start": "09:00", "end": "18:00"}},
}
TEAMS = {"gc": {"kind": "dingtalk"}}
OWNER_FIELDS = ("owner_id", "agent_id")


def directory():
    return Directory(PEOPLE, locale="zh-CN", time_zone="Asia/Shanghai")


def rule(**kw):
    return parse_rule({"name": "r", "event": "lead.assigned", "template": "t",
                       "recipients": ["owner"], "channels": ["email"], **kw})


def event(etype="lead.assigned", **data):
    return {"id": "ev1", "type": etype, "time": "2026-05-04T02:00:00+00:00",
            "subject": "L1", "data": {"lead_id": "L1", **data}}


def plan(rules, ev, **kw):
    return domain.plan(ev, rules, directory(), now=NOW, owner_fields=OWNER_FIELDS,
                       teams=TEAMS, **kw)


def test_owner_by_email_keyed_by_event_rule_recipient_channel():
    [doc] = plan([rule()], event(owner_id="ann"))
    assert doc["_id"] == "ev1|r|person:ann|email"
    assert (doc["status"], doc["due_at"], doc["address"], doc["locale"]) == (
        "queued", NOW, "ann@example.com", "zh-CN")


def test_the_same_event_plans_the_same_keys():
    first = plan([rule(recipients=["owner", "manager", "team"],
                       channels=["email", "sms", "dingtalk"])], event(owner_id="ann"))
    again = plan([rule(recipients=["owner", "manager", "team"],
                       channels=["email", "sms", "dingtalk"])], event(owner_id="ann"))
    assert [d["_id"] for d in first] == [d["_id"] for d in again]
    assert sorted(d["_id"] for d in first) == [
        "ev1|r|channel:gc|dingtalk", "ev1|r|person:ann|email", "ev1|r|person:ann|sms",
        "ev1|r|person:max|email"]  # max has no phone: no sms


@pytest.mark.parametrize("when, data, planned", [
    ({"owner_id": {"present": True}}, {"owner_id": "ann"}, 1),
    ({"owner_id": {"present": True}}, {"owner_id": None}, 0),
    ({"rule": "manual"}, {"owner_id": "ann", "rule": "manual"}, 1),
    ({"rule": "manual"}, {"owner_id": "ann", "rule": "territory"}, 0),
    ({"rule": {"in": ["a", "b"]}}, {"owner_id": "ann", "rule": "b"}, 1),
    ({"rule": {"not_in": ["a", "b"]}}, {"owner_id": "ann", "rule": "b"}, 0),
])
def test_conditions_on_the_data(when, data, planned):
    assert len(plan([rule(when=when)], event(**data))) == planned


def test_other_event_types_do_not_match():
    assert plan([rule()], event("lead.created", owner_id="ann")) == []


def test_unknown_owner_manager_or_team_is_left_out():
    assert plan([rule(recipients=["owner", "manager", "team"])], event(owner_id="zed")) == []


def test_role_person_and_channel_recipients_once_each():
    docs = plan([rule(recipients=["role:manager", "person:max", "channel:gc"],
                      channels=["email", "dingtalk"])], event(owner_id="ann"))
    assert sorted(d["recipient"] for d in docs) == ["channel:gc", "person:eve", "person:max"]


def test_customer_comes_from_the_owning_service():
    docs = plan([rule(recipients=["customer"])], event(),
                customer={"id": "Q1", "email": "buyer@example.cn", "locale": "en"})
    assert [(d["recipient"], d["address"], d["locale"]) for d in docs] == [
        ("customer:Q1", "buyer@example.cn", "en")]
    assert plan([rule(recipients=["customer"])], event()) == []


def test_quiet_hours_delay_until_they_end():
    [doc] = plan([rule(recipients=["person:eve"])], event())
    # 10:00 in Shanghai is inside eve's 09:00-18:00: due at 18:00 local = 10:00 UTC
    assert doc["due_at"] == dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)
    assert [e["status"] for e in doc["log"]] == ["queued", "delayed"]


@pytest.mark.parametrize("opted_out, status", [
    ({("person:ann", "email")}, "suppressed"), ({("person:ann", "*")}, "suppressed"),
    ({("person:ann", "sms")}, "queued"), (set(), "queued")])
def test_opt_out_suppresses(opted_out, status):
    [doc] = plan([rule()], event(owner_id="ann"), opted_out=opted_out)
    assert doc["status"] == status
    assert ("due_at" in doc) == (status == "queued")


@pytest.mark.parametrize("entry", [{"time_zone": "Mars/Olympus"},
                                   {"quiet_hours": {"start": "25:00", "end": "08:00"}}])
def test_a_directory_with_a_bad_time_zone_or_quiet_hours_is_refused(entry):
    with pytest.raises(Invalid, match="zed"):
        Directory({**PEOPLE, "zed": entry}, locale="en", time_zone="UTC")


def test_outcomes():
    [doc] = plan([rule()], event(owner_id="ann"))
    done = domain.sent(doc, NOW)
    assert done.set["status"] == "sent" and "due_at" in done.unset
    assert done.events[0][0] == "notification.sent"
    assert done.events[0][1]["notification_id"] == doc["_id"]
    retry = domain.retry_or_fail(doc, NOW, "421 busy", [5, 30])
    assert retry.set["due_at"] == NOW + dt.timedelta(seconds=5) and not retry.events
    last = domain.retry_or_fail({**doc, "attempts": 2}, NOW, "421 busy", [5, 30])
    assert last.set["status"] == "failed" and "gave up after 3 attempts" in last.set["reason"]
    assert last.events[0][0] == "notification.failed"


@pytest.mark.parametrize("field, value", [
    ("name", ""), ("event", None), ("template", 3), ("recipients", []),
    ("recipients", ["boss"]), ("recipients", ["role:"]), ("channels", ["fax"]),
    ("channels", []), ("when", {"x": {"like": "a"}}), ("when", {"x": {"in": "a"}}),
    ("when", ["x"]), ("when", {"$x": 1}), ("when", {"a.b": 1}), ("when", {"x": {"a": 1}}),
    ("when", {"x": {"in": [{"$y": 1}]}}), ("when", {"x": "\udcd4"}),
    ("when", {"x": {"present": "yes"}}), ("event", "lead\udcd4"),
    ("recipients", ["person:\udcd4"])])
def test_invalid_rules_are_refused_naming_the_field(field, value):
    with pytest.raises(Invalid) as exc:
        rule(**{field: value})
    assert field in exc.value.extra["errors"]


def test_unknown_template_is_refused():
    with pytest.raises(Invalid):
        parse_rule({"name": "r", "event": "e", "template": "x", "recipients": ["owner"],
                    "channels": ["email"]}, templates={"t": {}})


def test_shipped_rules_parse_and_name_shipped_templates():
    templates = yaml.safe_load((ROOT / "services/notify/templates.yml").read_text())
    rules = parse_rules(yaml.safe_load((ROOT / "services/notify/rules.yml").read_text()),
                        templates["templates"])
    assert {r.event for r in rules} >= {
        "lead.assigned", "lead.followup_due", "lead.response_overdue", "deal.stalled",
        "quote.submitted", "quote.sent", "contract.created", "ticket.assigned",
        "ticket.sla_warning", "ticket.sla_breached", "ticket.resolved"}


@pytest.mark.parametrize("data,mailed", [
    ({"owner_id": "ann"}, True),
    ({"owner_id": "ann", "historical": None}, True),
    ({"owner_id": "ann", "historical": True}, False),  # an admin's historical import
    ({"owner_id": None}, False),
])
def test_the_shipped_rules_mail_an_assignment_only_when_it_is_made_now(data, mailed):
    templates = yaml.safe_load((ROOT / "services/notify/templates.yml").read_text())
    rules = parse_rules(yaml.safe_load((ROOT / "services/notify/rules.yml").read_text()),
                        templates["templates"])
    planned = [d["rule"] for d in plan(rules, event("lead.assigned", lead_id="L-1",
                                                    rule="territory", **data))]
    assert planned == (["lead_assigned"] if mailed else [])


@pytest.mark.parametrize("module", ["notify.domain", "notify.rules", "notify.pacing",
                                    "notify.people"])
def test_pure_modules_import_no_io(module):
    probe = (f"import sys, json, {module}; "
             f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))")
    loaded = json.loads(subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env={"PYTHONPATH": str(ROOT / "services")},
        capture_output=True, text=True, check=True).stdout)
    io = {"pymongo", "bson", "nameko", "kombu", "eventlet", "werkzeug", "requests", "smtplib"}
    assert not set(loaded) & io


def test_the_dashboard_reads_what_notify_and_its_rules_produce():
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/notify.json").read_text())
    produced = ("dealflow_notifications_total", "dealflow_notification_latency_seconds_bucket",
                "dealflow:notification_attempt_failure:ratio_15m")
    rules = (ROOT / "deploy/prometheus/rules/notify.yml").read_text()
    notifier = (ROOT / "services/notify/notifier.py").read_text()
    assert "record: dealflow:notification_attempt_failure:ratio_15m" in rules
    assert '"dealflow_notifications_total"' in notifier
    assert '"dealflow_notification_latency_seconds"' in notifier
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert any(name in target["expr"] for name in produced), target["expr"]


def test_admin_rules_lay_over_the_configured_ones():
    configured = [rule(name="a"), rule(name="b")]
    stored = {"b": {"event": "deal.stalled", "template": "t", "recipients": ["manager"],
                    "channels": ["email"]},
              "a": {"event": "lead.assigned", "template": "t", "recipients": ["owner"],
                    "channels": ["email"], "enabled": False},
              "c": {"event": "lead.assigned", "template": "gone", "recipients": ["owner"],
                    "channels": ["email"]},
              "d": {"event": "lead.assigned", "template": "t", "recipients": ["owner"],
                    "channels": ["sms"]}}
    rules = effective(configured, stored, templates={"t": {}})
    assert [(r.name, r.event, r.enabled) for r in rules] == [
        ("a", "lead.assigned", False), ("b", "deal.stalled", True),
        ("d", "lead.assigned", True)]
    # a switched-off rule plans nothing
    assert [d["rule"] for d in plan(rules, event(owner_id="ann"))] == ["d"]


@pytest.mark.parametrize("name", ["A", "a.b", "$x", "a" * 65, "-a"])
def test_rule_names_are_keys(name):
    with pytest.raises(Invalid) as exc:
        rule(name=name)
    assert "name" in exc.value.extra["errors"]
