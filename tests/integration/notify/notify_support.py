"""Starting notify in-process against the test's vhost and database, pointed at the
private Mailpit and the local receivers, and publishing events as their producers do."""
import datetime as dt
import itertools

import yaml

from kit.events import new_event
from notify.service import NotifyService
from tests.support.amqp import publish  # noqa: F401 - shared with the notify tests
from tests.support.wait import wait_for

PEOPLE = {
    "ann": {"name": "王芳", "email": "ann@example.cn", "phone": "+8613800000001",
            "locale": "zh-CN", "time_zone": "Asia/Shanghai", "team": "gc", "manager": "max",
            "roles": ["rep"]},
    # the only one with quiet hours (22:00-08:00 in Shanghai): the tests that use her set
    # the service's clock
    "lin": {"name": "林静", "email": "lin@example.cn", "locale": "zh-CN",
            "time_zone": "Asia/Shanghai", "roles": ["rep"],
            "quiet_hours": {"start": "22:00", "end": "08:00"}},
    "max": {"name": "Max Mustermann", "email": "max@example.com", "locale": "en",
            "time_zone": "Europe/Berlin", "roles": ["manager"]},
    "bob": {"name": "Bob", "email": "bob@unknown.invalid", "locale": "en",
            "time_zone": "UTC", "roles": ["rep"]},
}
_sequence = itertools.count(1)


def notify_config(make_config, tmp_path, mailpit, dingtalk=None, **overrides):
    people = tmp_path / "people.yml"
    people.write_text(yaml.safe_dump({"people": PEOPLE}, allow_unicode=True),
                      encoding="utf-8")
    teams = {"gc": {"kind": "dingtalk", "webhook": dingtalk.webhook,
                    "secret": dingtalk.secret}} if dingtalk else {}
    notify = {"delivery_interval_seconds": 0.1,
              "retry_delays_seconds": [0.3] * 20, "lease_seconds": 10,
              "rate_limit": {"count": 0, "per_seconds": 3600},
              "default_quiet_hours": {}, **overrides.pop("NOTIFY", {})}
    channels = {
        "email": {"host": "127.0.0.1", "port": mailpit.smtp_port, "security": "none",
                  "username": None, "password": None, "timeout_seconds": 5,
                  "sender": "Dealflow <noreply@dealflow.example.com>"},
        "teams": teams, "dingtalk": {"timeout_seconds": 5}, "wecom": {"timeout_seconds": 5},
        "sms": {}}
    config = make_config("notify", CHANNELS=channels,
                         LINKS={"keys": f"t1={'s' * 40}", "keys_dir": None, "dev_dir": None},
                         **overrides)
    config["PEOPLE"] = {**config["PEOPLE"], "file": str(people)}
    config["NOTIFY"] = {**config["NOTIFY"], **notify,
                        "public_url": f"http://{config['WEB_SERVER_ADDRESS']}"}
    return config


def start_notify(container_factory, config):
    container = container_factory(NotifyService, config)
    container.start()
    return container


def notifier_of(container):
    return next(d for d in container.dependencies if d.attr_name == "notifier")


def event(etype, subject, **data):
    return new_event(etype, subject, data, next(_sequence))


def lead_assigned(lead_id, owner="ann"):
    return event("lead.assigned", lead_id, lead_id=lead_id, owner_id=owner, team="gc",
                 rule="territory", status="new")


def followup_due(lead_id, owner="ann"):
    return event("lead.followup_due", f"task-{lead_id}", lead_id=lead_id,
                 task_id=f"task-{lead_id}", owner_id=owner,
                 due_at=dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC), note="回电")


def wait_status(http, key, status, timeout=15):
    def check():
        resp = http.get(f"/api/v1/notifications/{key}")
        return resp.status_code == 200 and resp.json()["status"] == status and resp.json()
    return wait_for(check, timeout)


def key(event, rule, recipient, channel="email"):
    return f"{event['id']}|{rule}|{recipient}|{channel}"
