"""The delivery log with cursor paging and filters, the rate limit, and template preview."""
import pytest

from tests.integration.notify.notify_support import (
    key,
    lead_assigned,
    notify_config,
    publish,
    start_notify,
)
from tests.support.wait import wait_for


def test_delivery_log_pages_by_cursor_and_filters(
        container_factory, make_config, api, rabbit_config, tmp_path, inbox, mongo_db):
    config = notify_config(make_config, tmp_path, inbox)
    start_notify(container_factory, config)
    http = api(config)
    events = [lead_assigned(f"L-{i}", owner=("ann", "max")[i % 2]) for i in range(5)]
    publish(rabbit_config["AMQP_URI"], *events)
    assert wait_for(lambda: mongo_db.notifications.count_documents({"status": "sent"}) == 5)

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = http.get("/api/v1/notifications", params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 5 == len(set(seen))

    ann = http.get("/api/v1/notifications", params={"recipient": "person:ann"}).json()
    assert len(ann["items"]) == 3 and all(i["address"] == "ann@example.cn"
                                          for i in ann["items"])
    one = http.get("/api/v1/notifications", params={"event_id": events[1]["id"]}).json()
    assert [i["recipient"] for i in one["items"]] == ["person:max"]
    assert len(http.get("/api/v1/notifications", params={
        "status": "sent", "channel": "email"}).json()["items"]) == 5


@pytest.mark.parametrize("params, field", [({"status": "lost"}, "status"),
                                           ({"channel": "fax"}, "channel"),
                                           ({"limit": 0}, "limit"),
                                           ({"cursor": "nope"}, "cursor"),
                                           ({"colour": "red"}, "colour")])
def test_bad_queries_are_refused(container_factory, make_config, api, tmp_path, inbox,
                                 params, field):
    config = notify_config(make_config, tmp_path, inbox)
    start_notify(container_factory, config)
    resp = api(config).get("/api/v1/notifications", params=params)
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert field in resp.json()["errors"]


def test_the_rate_limit_holds_back_what_exceeds_it(
        container_factory, make_config, api, rabbit_config, tmp_path, inbox, mongo_db):
    config = notify_config(make_config, tmp_path, inbox,
                           NOTIFY={"rate_limit": {"count": 2, "per_seconds": 3600}})
    start_notify(container_factory, config)
    publish(rabbit_config["AMQP_URI"], *[lead_assigned(f"L-{i}") for i in range(4)])
    assert wait_for(lambda: mongo_db.notifications.count_documents({}) == 4)
    assert wait_for(lambda: len(inbox.to("ann@example.cn")) == 2)
    def held():
        return [d for d in mongo_db.notifications.find({"status": "queued"})
                if (d["log"][-1]["detail"] or "").startswith("rate limit")]
    assert wait_for(lambda: len(held()) == 2)
    assert all(d["attempts"] == 0 for d in held())
    assert len(inbox.to("ann@example.cn")) == 2


def test_preview_renders_a_template_with_its_sample_or_a_given_event(
        container_factory, make_config, api, tmp_path, inbox):
    config = notify_config(make_config, tmp_path, inbox)
    start_notify(container_factory, config)
    http = api(config)
    zh = http.post("/api/v1/templates/lead_followup_due/preview", json={}).json()
    assert zh["locale"] == "zh-CN" and zh["subject"] == "跟进提醒：线索 L-1001"
    assert "备注：回电" in zh["text"] and zh["sms"]["template_id"] == "1000003"
    en = http.post("/api/v1/templates/quote_sent/preview", json={
        "locale": "en-GB", "links": {"accept": "https://x.example/accept/1"}}).json()
    assert en["locale"] == "en" and "Accept it: https://x.example/accept/1" in en["text"]
    given = http.post("/api/v1/templates/lead_assigned/preview", json={
        "locale": "en", "recipient_name": "Ann",
        "event": {"type": "lead.assigned", "data": {"lead_id": "L-9", "rule": "manual"}}})
    assert given.json()["text"].startswith("Hello Ann,\nlead L-9 is yours now")

    missing = http.post("/api/v1/templates/lead_assigned/preview", json={
        "event": {"type": "lead.assigned", "data": {"rule": "manual"}}})
    assert missing.status_code == 400 and "lead_id" in missing.json()["detail"]
    assert http.post("/api/v1/templates/nope/preview", json={}).status_code == 404
    rules = http.get("/api/v1/rules").json()["items"]
    assert {"name": "lead_assigned", "event": "lead.assigned", "template": "lead_assigned",
            "recipients": ["owner"], "channels": ["email"], "enabled": True,
            "source": "config", "when": {"owner_id": {"present": True},
                                             "historical": {"not_in": [True]}}} in rules


def test_admins_set_and_remove_rules(container_factory, make_config, api, bearer,
                                     rabbit_config, tmp_path, inbox, mongo_db):
    config = notify_config(make_config, tmp_path, inbox, NOTIFY={"rules_refresh_seconds": 0})
    start_notify(container_factory, config)
    http = api(config)
    to_manager = {"event": "lead.assigned", "template": "lead_assigned",
                  "recipients": ["manager"], "channels": ["email"]}
    rep = api(config, auth=bearer("rep", sub="ann", team="gc"))
    assert rep.put("/api/v1/rules/lead_assigned", json=to_manager).status_code == 403

    put = http.put("/api/v1/rules/lead_assigned", json=to_manager)
    assert put.status_code == 200, put.text
    assert put.json()["source"] == "admin" and put.json()["recipients"] == ["manager"]
    first = lead_assigned("L-20")
    publish(rabbit_config["AMQP_URI"], first)
    assert wait_for(lambda: inbox.to("max@example.com"))  # ann's manager, not ann
    assert inbox.to("ann@example.cn") == []
    assert mongo_db.notifications.count_documents({}) == 1

    # (a rule switched off plans nothing: tests/unit/notify, without a race to wait out)
    off = http.put("/api/v1/rules/lead_assigned", json={**to_manager, "enabled": False})
    assert off.status_code == 200 and off.json()["enabled"] is False
    added = http.put("/api/v1/rules/followups_to_max", json={
        "event": "lead.followup_due", "template": "lead_followup_due",
        "recipients": ["person:max"], "channels": ["email"]})
    assert added.status_code == 200

    assert http.delete("/api/v1/rules/lead_assigned").status_code == 204
    assert http.delete("/api/v1/rules/lead_assigned").status_code == 404
    again = lead_assigned("L-23")
    publish(rabbit_config["AMQP_URI"], again)
    assert wait_for(lambda: inbox.to("ann@example.cn"))  # the configured rule again
    assert mongo_db.notifications.find_one(
        {"_id": key(again, "lead_assigned", "person:ann")})["status"] == "sent"
    rules = {r["name"]: r for r in http.get("/api/v1/rules").json()["items"]}
    assert rules["lead_assigned"]["source"] == "config"
    assert rules["followups_to_max"]["source"] == "admin"
    audit = http.get("/api/v1/audit").json()["items"]
    assert {"PUT", "DELETE"} <= {entry["method"] for entry in audit}


@pytest.mark.parametrize("body, field", [
    ({"template": "nope"}, "template"), ({"recipients": ["boss"]}, "recipients"),
    ({"channels": ["fax"]}, "channels"), ({"when": {"x": {"like": 1}}}, "when"),
    ({"event": ""}, "event")])
def test_a_bad_rule_is_refused_naming_the_field(container_factory, make_config, api,
                                                tmp_path, inbox, mongo_db, body, field):
    config = notify_config(make_config, tmp_path, inbox)
    start_notify(container_factory, config)
    rule = {"event": "lead.assigned", "template": "lead_assigned", "recipients": ["owner"],
            "channels": ["email"], **body}
    resp = api(config).put("/api/v1/rules/x", json=rule)
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["errors"]
    assert mongo_db.rules.count_documents({}) == 0


def test_a_rule_name_that_is_no_plain_key_is_refused(container_factory, make_config, api,
                                                     tmp_path, inbox, mongo_db):
    config = notify_config(make_config, tmp_path, inbox)
    start_notify(container_factory, config)
    resp = api(config).put("/api/v1/rules/a.b", json={
        "event": "lead.assigned", "template": "lead_assigned", "recipients": ["owner"],
        "channels": ["email"]})
    assert resp.status_code == 400 and "name" in resp.json()["errors"]
    assert mongo_db.rules.count_documents({}) == 0


@pytest.mark.parametrize("enabled", [0, 1, "yes", None])
def test_enabled_is_a_json_boolean(container_factory, make_config, api, tmp_path, inbox,
                                   mongo_db, enabled):
    config = notify_config(make_config, tmp_path, inbox)
    start_notify(container_factory, config)
    resp = api(config).put("/api/v1/rules/x", json={
        "event": "lead.assigned", "template": "lead_assigned", "recipients": ["owner"],
        "channels": ["email"], "enabled": enabled})
    assert resp.status_code == 400 and "enabled" in resp.json()["errors"]
    assert mongo_db.rules.count_documents({}) == 0
