"""The lead event stream as a subscriber sees it: per entity (a lead, a follow-up task) the
sequences 1..n without a gap, n being the entity's version, however many changes caused no
event (notes, merges of duplicate captures, retired follow-ups)."""
import datetime as dt

from tests.support.amqp import Subscriber
from tests.support.wait import wait_for

ASSIGNMENT = {
    "fallback_queue": "inbox", "default_cap": 100, "caps": {},
    "territories": [{"name": "dach", "countries": ["DE"], "team": "dach"}],
    "teams": {"dach": ["ann", "bob"]},
}


def test_every_lead_and_task_stream_is_gap_free(container_factory, make_config, api,
                                               rabbit_config, mongo_db):
    from leads.service import LeadsService

    sub = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.#", name="crm-sync.lead-events")
    config = make_config("leads", ASSIGNMENT=ASSIGNMENT, SLA={"response_minutes": 0},
                         FOLLOWUP={"check_interval_seconds": 0.05})
    container_factory(LeadsService, config).start()
    http = api(config)

    def ok(resp, status=200):
        assert resp.status_code == status, resp.text
        return resp.json()

    def note(lead_id):
        ok(http.post(f"/api/v1/leads/{lead_id}/activities",
                     json={"type": "note", "summary": "internal"}), 201)

    def task(lead_id):
        past = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
        return ok(http.post(f"/api/v1/leads/{lead_id}/tasks", json={"due_at": past}), 201)

    # a lead worked to conversion, with notes, a duplicate capture merged in and a move to
    # contacted after a call had answered it
    won = ok(http.post("/api/v1/leads", json={
        "name": "Ada", "email": "ada@example.com", "country": "DE"}), 201)["id"]
    note(won)
    ok(http.post("/api/v1/leads", params={"on_duplicate": "merge"}, json={
        "name": "Ada L.", "email": "ada@example.com", "company": "AE"}))
    note(won)
    ok(http.post(f"/api/v1/leads/{won}/activities", json={"type": "call"}), 201)
    # the call answered it (lead.contacted, status new); the move to contacted is a status
    # change, so it has its event too (lead.contacted, status contacted)
    ok(http.post(f"/api/v1/leads/{won}/status", json={"status": "contacted"}))
    note(won)
    ok(http.post(f"/api/v1/leads/{won}/status", json={"status": "qualified"}))
    tasks = [task(won)["id"], task(won)["id"]]
    assert wait_for(lambda: mongo_db.tasks.count_documents({"fired": True}) == 2)
    ok(http.post(f"/api/v1/leads/{won}/convert", json={"amount": "100", "currency": "EUR"}))

    # a lead disqualified with a follow-up still pending: the task retires without an event
    lost = ok(http.post("/api/v1/leads", json={
        "name": "Bob", "email": "bob@example.com", "country": "DE"}), 201)["id"]
    note(lost)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)).isoformat()
    retired = ok(http.post(f"/api/v1/leads/{lost}/tasks", json={"due_at": later}), 201)["id"]
    ok(http.post(f"/api/v1/leads/{lost}/status",
                 json={"status": "disqualified", "reason": "spam"}))
    note(lost)
    assert wait_for(lambda: mongo_db.tasks.find_one({"_id": retired})["fired"])

    finals = {i: ok(http.get(f"/api/v1/leads/{i}"))["version"] for i in (won, lost)}
    finals.update({t: mongo_db.tasks.find_one({"_id": t})["version"] for t in tasks})
    assert finals[won] == 6 and finals[lost] == 3  # created, assigned, then one per event
    assert [finals[t] for t in tasks] == [1, 1]
    events = sub.drain(expect=sum(finals.values()), timeout=10)
    events += sub.drain(timeout=0.5)
    sub.close()

    by_subject = {}
    for event in events:
        seen = by_subject.setdefault(event["subject"], {})
        assert seen.setdefault(event["dealflowsequence"], event["id"]) == event["id"]
    assert set(by_subject) == set(finals)
    for subject, version in finals.items():
        assert sorted(by_subject[subject]) == list(range(1, version + 1)), subject
