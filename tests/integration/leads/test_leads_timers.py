"""Follow-up reminders and the response SLA with two service instances on one database:
each due item fires exactly once (atomic claim), however the timers interleave."""
import datetime as dt

import pytest

from tests.support.amqp import Subscriber, distinct

FAST = {"check_interval_seconds": 0.05}
ASSIGNMENT = {
    "fallback_queue": "inbox", "default_cap": 100, "caps": {},
    "territories": [{"name": "dach", "countries": ["DE"], "team": "dach"}],
    "teams": {"dach": ["ann", "bob"]},
}


@pytest.fixture
def two_instances(container_factory, make_config, api):
    from leads.service import LeadsService

    def start(**overrides):
        clients = []
        for _ in range(2):
            config = make_config("leads", ASSIGNMENT=ASSIGNMENT, **overrides)
            container_factory(LeadsService, config).start()
            clients.append(api(config))
        return clients

    return start


def test_each_followup_fires_once_with_two_instances(two_instances, rabbit_config, mongo_db):
    sub = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.followup_due")
    first, second = two_instances(FOLLOWUP=FAST, SLA={"response_minutes": 0})
    lead_id = first.post("/api/v1/leads", json={
        "name": "T", "email": "t@example.com", "country": "DE"}).json()["id"]
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    task_ids = []
    for i in range(20):
        client = (first, second)[i % 2]
        resp = client.post(f"/api/v1/leads/{lead_id}/tasks", json={"due_at": past,
                                                                   "note": f"call {i}"})
        assert resp.status_code == 201, resp.text
        task_ids.append(resp.json()["id"])
    later = second.post(f"/api/v1/leads/{lead_id}/tasks", json={
        "due_at": "2999-01-01T00:00:00Z"}).json()["id"]

    events = sub.drain(expect=20, timeout=30, distinct=True)
    events += sub.drain(timeout=1)  # a second firing (another event id) would show up here
    events = distinct(events)
    assert sorted(e["data"]["task_id"] for e in events) == sorted(task_ids)
    assert all(e["data"]["owner_id"] == "ann" and e["subject"] in task_ids for e in events)
    assert mongo_db.tasks.count_documents({"fired": True}) == 20
    assert mongo_db.tasks.find_one({"_id": later})["fired"] is False
    sub.close()


def test_response_overdue_fires_once_per_lead_and_reassigns(two_instances, rabbit_config,
                                                            mongo_db):
    sub = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.*")
    first, second = two_instances(
        SLA={"response_minutes": 0.005, "reassign_overdue": True, **FAST})
    ids = []
    for i in range(10):
        resp = (first, second)[i % 2].post("/api/v1/leads", json={
            "name": f"L{i}", "email": f"l{i}@example.com", "country": "DE"})
        ids.append(resp.json()["id"])

    # created + assigned at capture, then response_overdue + assigned (reassignment)
    events = sub.drain(expect=40, timeout=30, distinct=True)
    events += sub.drain(timeout=1)  # a second firing (another event id) would show up here
    events = distinct(events)
    overdue = [e for e in events if e["type"] == "lead.response_overdue"]
    assert sorted(e["subject"] for e in overdue) == sorted(ids)
    assert {e.get("actor") for e in overdue} == {"system:leads"}  # a timer's write
    for event in overdue:
        lead = mongo_db.leads.find_one({"_id": event["subject"]})
        assert event["data"]["reassigned_to"] == lead["owner_id"]
        assert event["data"]["owner_id"] != lead["owner_id"]
    reassigned = [e for e in events if e["type"] == "lead.assigned"
                  and e["data"]["rule"] == "response_overdue"]
    assert len(reassigned) == 10
    counts = {d["_id"]: d["open"] for d in mongo_db.reps.find({})}
    assert sum(counts.values()) == 10
    sub.close()


def test_a_lead_contacted_in_time_is_never_overdue(two_instances, rabbit_config, mongo_db):
    sub = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.response_overdue")
    first, _ = two_instances(SLA={"response_minutes": 0.02, **FAST})
    lead_id = first.post("/api/v1/leads", json={"name": "Q", "email": "q@x.com"}).json()["id"]
    assert first.post(f"/api/v1/leads/{lead_id}/status",
                      json={"status": "contacted"}).status_code == 200
    assert sub.drain(timeout=2) == []
    assert mongo_db.leads.find_one({"_id": lead_id})["response_due_at"] is None
    sub.close()
