"""Deal activities and tasks (real FerretDB and RabbitMQ): due tasks fire deal.task_due
once with two instances, finished tasks never fire, activities restart the stall clock,
and the deal's timeline shows its lead's timeline (the leads service running too)."""
import datetime as dt
from collections import Counter

import pytest

from tests.integration.deals.deals_support import Client, start_deals, wait_for
from tests.support.amqp import Subscriber

FAST = {"TASKS": {"check_interval_seconds": 0.05}}


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def test_due_tasks_fire_once_across_two_instances(container_factory, make_config, api,
                                                   rabbit_config, mongo_db):
    first, second = make_config("deals", **FAST), make_config("deals", **FAST)
    sub = Subscriber(rabbit_config["AMQP_URI"], "deals", "deal.task_due")
    start_deals(container_factory, first)
    start_deals(container_factory, second)
    http = api(first)
    deals = [Client(http).create(name=f"D{i}", owner_id="rep-1") for i in range(3)]
    # one task is cancelled before it falls due: it never fires
    cancelled = http.post(f"/api/v1/deals/{deals[0]['id']}/tasks", json={
        "due_at": iso(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)),
        "title": "chase the signature"}).json()
    resp = http.post(f"/api/v1/deals/{deals[0]['id']}/tasks/{cancelled['id']}/cancel")
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    assert http.post(f"/api/v1/deals/{deals[0]['id']}/tasks/{cancelled['id']}/complete"
                     ).status_code == 409
    soon = iso(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5))
    later = iso(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    tasks = []
    for deal in deals:
        for title in ("send the proposal", "call back"):
            resp = http.post(f"/api/v1/deals/{deal['id']}/tasks",
                             json={"due_at": soon, "title": title})
            assert resp.status_code == 201, resp.text
            tasks.append(resp.json())
    not_due = http.post(f"/api/v1/deals/{deals[0]['id']}/tasks",
                        json={"due_at": later, "title": "quarterly review"}).json()

    assert wait_for(lambda: mongo_db.tasks.count_documents(
        {"fired": True, "status": "open"}) == len(tasks))
    fired = sub.drain(expect=len(tasks), timeout=10) + sub.drain(timeout=1)
    assert Counter(e["data"]["task_id"] for e in fired) == Counter(t["id"] for t in tasks)
    assert {e["data"]["owner_id"] for e in fired} == {"rep-1"}
    listed = {t["id"]: t for t in
              http.get(f"/api/v1/deals/{deals[0]['id']}/tasks").json()["items"]}
    assert listed[not_due["id"]]["fired"] is False
    assert listed[cancelled["id"]]["fired_at"] is None
    sub.close()


@pytest.mark.parametrize("field,value", [("type", "fax"), ("duration_minutes", -1),
                                         ("at", "2024-01-01T10:00:00"), ("nope", 1)])
def test_bad_activity_field_is_400_naming_it(container_factory, make_config, api, field,
                                              value):
    config = make_config("deals")
    start_deals(container_factory, config)
    http = api(config)
    deal = Client(http).create(name="D")
    resp = http.post(f"/api/v1/deals/{deal['id']}/activities",
                     json={"type": "call", field: value})
    assert resp.status_code == 400 and field in resp.json()["errors"]


def test_the_deal_timeline_shows_the_leads_timeline(container_factory, make_config, api,
                                                    rabbit_config):
    from leads.service import LeadsService

    leads_config = make_config("leads", SLA={"response_minutes": 0})
    container_factory(LeadsService, leads_config).start()
    deals_config = make_config("deals", LEADS={
        "url": f"http://{leads_config['WEB_SERVER_ADDRESS']}"})
    sub = Subscriber(rabbit_config["AMQP_URI"], "deals", "deal.activity_logged",
                     name="test-activity-logged")
    start_deals(container_factory, deals_config)
    leads, deals = api(leads_config), api(deals_config)
    lead_id = leads.post("/api/v1/leads", json={"name": "Wei", "email": "wei@acme.example",
                                                "source": "web_form"}).json()["id"]
    leads.post(f"/api/v1/leads/{lead_id}/activities",
               json={"type": "call", "summary": "first call"})
    for status in ("contacted", "qualified"):
        leads.post(f"/api/v1/leads/{lead_id}/status", json={"status": status})
    assert leads.post(f"/api/v1/leads/{lead_id}/convert", json={}).status_code == 200
    deal = wait_for(lambda: (deals.get("/api/v1/deals", params={"lead_id": lead_id})
                             .json()["items"] or [None])[0])
    resp = deals.post(f"/api/v1/deals/{deal['id']}/activities",
                      json={"type": "meeting", "summary": "demo", "duration_minutes": 60})
    assert resp.status_code == 201, resp.text
    timeline = deals.get(f"/api/v1/deals/{deal['id']}/timeline").json()
    assert timeline["lead_timeline_missing"] is None
    assert [(e["source"], e["type"]) for e in timeline["entries"]] == [
        ("lead", "call"), ("deal", "meeting")]
    [logged] = sub.drain(expect=1, timeout=5)
    assert logged["data"]["deal_id"] == deal["id"] and logged["data"]["type"] == "meeting"
    assert logged["data"]["stage"] == deal["stage"]
    after = deals.get(f"/api/v1/deals/{deal['id']}").json()
    assert after["last_activity_at"] > deal["last_activity_at"]
    sub.close()
