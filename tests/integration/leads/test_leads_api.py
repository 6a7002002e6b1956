"""Leads over HTTP against real FerretDB and RabbitMQ: capture, dedup (with the race),
status, activities, conversion, assignment and listing, with the events they publish."""

import eventlet
import pytest

from tests.support.amqp import Subscriber

ASSIGNMENT = {
    "fallback_queue": "inbox",
    "default_cap": 2,
    "caps": {},
    "territories": [
        {"name": "dach", "countries": ["DE", "AT", "CH"], "team": "dach"},
        {"name": "nowhere", "countries": ["FR"], "team": "empty"},
    ],
    "teams": {"dach": ["ann", "bob"], "empty": []},
}




@pytest.fixture
def leads(container_factory, make_config, api, rabbit_config):
    from leads.service import LeadsService

    config = make_config("leads", ASSIGNMENT=ASSIGNMENT, SLA={"response_minutes": 0})
    events = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.#")
    container_factory(LeadsService, config).start()
    client = api(config)
    client.events = events
    yield client
    events.close()


def create(client, **fields):
    body = {"name": "Ada Lovelace", "email": "ada@example.com", "source": "web_form", **fields}
    resp = client.post("/api/v1/leads", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def test_create_stores_normalised_lead_and_publishes_created_then_assigned(leads):
    lead_id = create(leads, email="  Ada@Example.COM ", phone="030 1234567", country="de",
                     company="Analytical Engines", utm={"source": "newsletter"},
                     custom={"industry": "computing", "seats": 12})

    lead = leads.get(f"/api/v1/leads/{lead_id}").json()
    assert lead["email"] == "ada@example.com"
    assert lead["phone"] == "+49301234567"
    assert lead["country"] == "DE"
    assert lead["status"] == "new" and lead["owner_id"] == "ann" and lead["team"] == "dach"
    assert lead["custom"] == {"industry": "computing", "seats": 12}
    assert "has_company" in lead["score_rules"] and lead["grade"] in "ABCD"

    created, assigned = leads.events.drain(expect=2, timeout=5)
    assert (created["type"], created["dealflowsequence"]) == ("lead.created", 1)
    assert (assigned["type"], assigned["dealflowsequence"]) == ("lead.assigned", 2)
    assert created["data"]["email"] == "ada@example.com"
    assert created["data"]["owner_id"] == "ann"
    assert assigned["data"] == {"lead_id": lead_id, "owner_id": "ann", "queue": None,
                                "previous_owner_id": None, "team": "dach", "rule": "dach",
                                "status": "new"}


@pytest.mark.parametrize("field,value", [
    ("email", "not-an-email"),
    ("country", "XX"),
    ("phone", "12"),
    ("source", "carrier_pigeon"),
    ("name", "   "),
    ("custom", {"a.b": "x"}),
    ("unexpected", 1),
])
def test_bad_field_is_400_naming_it_and_nothing_is_stored(leads, mongo_db, field, value):
    resp = leads.post("/api/v1/leads", json={"name": "X", "email": "x@example.com",
                                             field: value})
    assert resp.status_code == 400
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert field in resp.json()["errors"]
    assert mongo_db.leads.count_documents({}) == 0


def test_duplicate_by_email_or_phone_is_409_with_existing_id(leads):
    lead_id = create(leads, email="ada@example.com", phone="+49 30 1234567")
    again = leads.post("/api/v1/leads", json={"name": "A", "email": " ADA@example.com"})
    assert again.status_code == 409 and again.json()["existing_id"] == lead_id
    by_phone = leads.post("/api/v1/leads", json={"name": "A", "phone": "030 1234567",
                                                 "country": "DE"})
    assert by_phone.status_code == 409 and by_phone.json()["existing_id"] == lead_id


def test_duplicate_with_merge_fills_empty_fields_and_records_an_activity(leads):
    lead_id = create(leads, company=None)
    resp = leads.post("/api/v1/leads?on_duplicate=merge", json={
        "name": "Someone Else", "email": "ADA@example.com", "company": "Engines Ltd",
        "source": "event", "custom": {"booth": "B12"}})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["id"] == lead_id and body["merged"] is True
    assert body["lead"]["name"] == "Ada Lovelace"  # kept
    assert body["lead"]["company"] == "Engines Ltd"  # filled
    assert body["lead"]["custom"] == {"booth": "B12"}
    [activity] = leads.get(f"/api/v1/leads/{lead_id}/timeline").json()["activities"]
    assert activity["type"] == "merge" and activity["fields"] == ["company", "custom"]


def test_twenty_concurrent_creates_with_one_email_store_exactly_one(leads, mongo_db):
    pool = eventlet.GreenPool(20)
    body = {"name": "Racer", "email": "race@example.com", "country": "DE"}
    responses = list(pool.imap(lambda i: leads.post("/api/v1/leads", json=body), range(20)))

    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 19, [r.text for r in responses if r.status_code >= 500]
    [winner] = [r.json()["id"] for r in responses if r.status_code == 201]
    assert {r.json()["existing_id"] for r in responses if r.status_code == 409} == {winner}
    assert mongo_db.leads.count_documents({}) == 1
    # the losers gave back the rep slots they had claimed
    owner = mongo_db.leads.find_one({"_id": winner})["owner_id"]
    assert sum(d["open"] for d in mongo_db.reps.find({})) == (1 if owner else 0)


def test_status_flow_events_and_every_invalid_move_is_409_naming_allowed(leads):
    lead_id = create(leads, country="DE")
    leads.events.drain(expect=2, timeout=5)

    bad = leads.post(f"/api/v1/leads/{lead_id}/status", json={"status": "qualified"})
    assert bad.status_code == 409
    assert bad.json()["allowed"] == ["contacted", "disqualified"]

    for status in ("contacted", "qualified"):
        resp = leads.post(f"/api/v1/leads/{lead_id}/status", json={"status": status})
        assert resp.status_code == 200, resp.text
    contacted, qualified = leads.events.drain(expect=2, timeout=5)
    assert contacted["type"] == "lead.contacted" and contacted["dealflowsequence"] == 3
    assert contacted["data"]["first_response_seconds"] >= 0
    assert qualified["type"] == "lead.qualified" and qualified["dealflowsequence"] == 4

    converted = leads.post(f"/api/v1/leads/{lead_id}/convert",
                           json={"amount": "12500.00", "currency": "eur"})
    assert converted.status_code == 200, converted.text
    assert converted.json()["status"] == "converted"
    [event] = leads.events.drain(expect=1, timeout=5)
    assert event["type"] == "lead.converted" and event["dealflowsequence"] == 5
    assert event["data"]["amount"] == "12500.00" and event["data"]["currency"] == "EUR"
    assert event["data"]["owner_id"] == "ann" and event["data"]["email"] == "ada@example.com"

    twice = leads.post(f"/api/v1/leads/{lead_id}/convert", json={})
    assert twice.status_code == 409
    assert leads.events.drain(timeout=0.5) == []


def test_converting_a_lead_that_is_not_qualified_is_409(leads):
    lead_id = create(leads)
    resp = leads.post(f"/api/v1/leads/{lead_id}/convert", json={})
    assert resp.status_code == 409 and resp.json()["current"] == "new"


def test_disqualify_needs_a_reason(leads):
    lead_id = create(leads)
    resp = leads.post(f"/api/v1/leads/{lead_id}/status", json={"status": "disqualified"})
    assert resp.status_code == 400 and "reason" in resp.json()["errors"]
    ok = leads.post(f"/api/v1/leads/{lead_id}/status",
                    json={"status": "disqualified", "reason": "spam"})
    assert ok.status_code == 200 and ok.json()["reason"] == "spam"


def test_first_activity_sets_first_response_once_and_timeline_is_in_time_order(leads):
    lead_id = create(leads)
    leads.events.drain(expect=2, timeout=5)
    note = leads.post(f"/api/v1/leads/{lead_id}/activities",
                      json={"type": "note", "summary": "looks promising"})
    assert note.status_code == 201, note.text
    assert note.json()["lead"]["contacted_at"] is None
    call = leads.post(f"/api/v1/leads/{lead_id}/activities", json={
        "type": "call", "outcome": "connected"})
    assert call.status_code == 201
    assert call.json()["lead"]["contacted_at"] is not None
    assert "had_call" in call.json()["lead"]["score_rules"]
    earlier = leads.post(f"/api/v1/leads/{lead_id}/activities", json={
        "type": "email", "at": "2020-01-01T00:00:00Z"})
    assert earlier.status_code == 201

    events = leads.events.drain(expect=1, timeout=5) + leads.events.drain(timeout=0.5)
    assert [e["type"] for e in events] == ["lead.contacted"]
    timeline = leads.get(f"/api/v1/leads/{lead_id}/timeline").json()["activities"]
    assert [a["type"] for a in timeline] == ["email", "note", "call"]


def test_round_robin_skips_reps_at_cap_then_falls_back_to_the_queue(leads, mongo_db):
    ids = [create(leads, email=f"r{i}@example.com", country="AT") for i in range(5)]
    owners = [leads.get(f"/api/v1/leads/{i}").json() for i in ids]
    assert [(o["owner_id"], o["queue"]) for o in owners] == [
        ("ann", None), ("bob", None), ("ann", None), ("bob", None), (None, "inbox")]
    other = leads.get(f"/api/v1/leads/{create(leads, email='fr@x.com', country='FR')}").json()
    assert (other["owner_id"], other["queue"], other["team"]) == (None, "inbox", "empty")

    # closing a lead frees its owner's slot for the next one
    closed = leads.post(f"/api/v1/leads/{ids[0]}/status",
                        json={"status": "disqualified", "reason": "no budget"})
    assert closed.status_code == 200
    nxt = leads.get(f"/api/v1/leads/{create(leads, email='n@x.com', country='CH')}").json()
    assert nxt["owner_id"] == "ann"
    assert {d["_id"]: d["open"] for d in mongo_db.reps.find({})} == {"ann": 2, "bob": 2}


def test_manager_reassigns_and_lead_assigned_names_previous_owner(leads, mongo_db):
    lead_id = create(leads, country="DE")
    leads.events.drain(expect=2, timeout=5)
    resp = leads.post(f"/api/v1/leads/{lead_id}/assign", json={"owner_id": "carol"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["owner_id"] == "carol"
    [event] = leads.events.drain(expect=1, timeout=5)
    assert event["type"] == "lead.assigned" and event["data"]["rule"] == "manual"
    assert event["data"]["previous_owner_id"] == "ann" and event["dealflowsequence"] == 3
    assert {d["_id"]: d["open"] for d in mongo_db.reps.find({})} == {"ann": 0, "carol": 1}

    both = leads.post(f"/api/v1/leads/{lead_id}/assign", json={"owner_id": "x", "queue": "y"})
    assert both.status_code == 400


def test_list_filters_and_cursor_pagination(leads):
    ids = [create(leads, email=f"p{i}@example.com", source="ads" if i % 2 else "event")
           for i in range(7)]
    seen, cursor = [], None
    while True:
        url = "/api/v1/leads?limit=3&source=event" + (f"&cursor={cursor}" if cursor else "")
        page = leads.get(url).json()
        seen += [item["id"] for item in page["items"]]
        assert all(item["source"] == "event" for item in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [ids[i] for i in (6, 4, 2, 0)]
    assert len(leads.get("/api/v1/leads?status=new&owner_id=nobody").json()["items"]) == 0
    assert leads.get("/api/v1/leads?grade=E").status_code == 400
    assert leads.get("/api/v1/leads?cursor=garbage").status_code == 400
    future = leads.get("/api/v1/leads?created_from=2999-01-01T00:00:00Z").json()
    assert future["items"] == []


def test_unknown_lead_is_404(leads):
    assert leads.get("/api/v1/leads/nope").status_code == 404
    assert leads.post("/api/v1/leads/nope/status", json={"status": "contacted"}).status_code \
        == 404


def test_openapi_documents_the_routes(leads):
    spec = leads.get("/openapi.json").json()
    for path in ("/api/v1/leads", "/api/v1/leads/import", "/api/v1/leads/{id}/status",
                 "/api/v1/leads/{id}/convert", "/api/v1/leads/{id}/assign",
                 "/api/v1/leads/{id}/tasks", "/api/v1/leads/{id}/timeline"):
        assert path in spec["paths"], path
    assert "409" in spec["paths"]["/api/v1/leads"]["post"]["responses"]


@pytest.mark.parametrize("field, value", [
    ("email", "ada@example.com"),
    ("phone", "+49 30 1234567"),
])
def test_an_edit_to_another_leads_email_or_phone_is_409_and_changes_nothing(
        leads, mongo_db, field, value):
    create(leads, phone="+49 30 1234567")
    other = create(leads, email="grace@example.com", phone="+49 30 7654321")
    before = leads.get(f"/api/v1/leads/{other}")
    resp = leads.patch(f"/api/v1/leads/{other}", json={field: value},
                       headers={"If-Match": before.headers["ETag"]})
    assert resp.status_code == 409, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert "e-mail or phone exists" in resp.json()["detail"]
    after = mongo_db.leads.find_one({"_id": other})
    assert (after["email"], after["phone"], after["version"]) == (
        "grace@example.com", before.json()["phone"], before.json()["version"])
