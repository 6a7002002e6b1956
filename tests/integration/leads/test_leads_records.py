"""Leads as a sales team edits, searches and recycles them, against real FerretDB and
RabbitMQ: PATCH at a version (If-Match), search by each normalised key with cursor pages,
and recycling into nurture with its event."""
import pytest

from tests.support.amqp import Subscriber

ASSIGNMENT = {"fallback_queue": "inbox", "default_cap": 50, "caps": {},
              "territories": [{"name": "china", "countries": ["CN"], "team": "gc"}],
              "teams": {"gc": ["ann"]}}


@pytest.fixture
def leads(container_factory, make_config, api, rabbit_config):
    from leads.service import LeadsService

    config = make_config("leads", ASSIGNMENT=ASSIGNMENT, SLA={"response_minutes": 0})
    events = Subscriber(rabbit_config["AMQP_URI"], "leads", "#")
    container_factory(LeadsService, config).start()
    client = api(config)
    client.events = events
    yield client
    events.close()


def create(client, **fields):
    body = {"name": "Wei Zhang", "source": "web_form", "country": "CN", **fields}
    resp = client.post("/api/v1/leads", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def read(client, lead_id):
    resp = client.get(f"/api/v1/leads/{lead_id}")
    assert resp.status_code == 200
    return resp.json(), resp.headers["ETag"]


def test_patch_at_the_version_read_records_who_changed_what(leads, bearer):
    lead_id = create(leads, email="wei@example.com")
    lead, tag = read(leads, lead_id)
    assert tag == f'"{lead["version"]}"'
    resp = leads.patch(f"/api/v1/leads/{lead_id}", json={"company": "ACME, Inc.",
                                                          "phone": "138 0013 8000"},
                       headers={"If-Match": tag})
    assert resp.status_code == 200, resp.text
    assert resp.json()["phone"] == "+8613800138000" and resp.json()["company"] == "ACME, Inc."
    assert resp.headers["ETag"] == f'"{lead["version"] + 1}"'
    update = [a for a in leads.get(f"/api/v1/leads/{lead_id}/timeline").json()["activities"]
              if a["type"] == "update"]
    assert update[0]["actor"] == "ada" and update[0]["fields"] == ["company", "phone"]
    assert update[0]["changes"]["phone"] == {"from": None, "to": "+8613800138000"}
    events = leads.events.drain(expect=3, timeout=5)
    assert events[-1]["type"] == "lead.updated"
    assert events[-1]["data"]["changed"] == ["company", "phone"]
    assert events[-1]["actor"] == "ada"


def test_patch_with_a_stale_etag_is_409_and_changes_nothing(leads):
    lead_id = create(leads, email="wei@example.com")
    _, tag = read(leads, lead_id)
    assert leads.patch(f"/api/v1/leads/{lead_id}", json={"region": "Beijing"},
                       headers={"If-Match": tag}).status_code == 200
    resp = leads.patch(f"/api/v1/leads/{lead_id}", json={"region": "Shanghai"},
                       headers={"If-Match": tag})
    assert resp.status_code == 409
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert read(leads, lead_id)[0]["region"] == "Beijing"


def test_patch_without_if_match_is_428(leads):
    lead_id = create(leads, email="wei@example.com")
    resp = leads.patch(f"/api/v1/leads/{lead_id}", json={"region": "Beijing"})
    assert resp.status_code == 428


@pytest.mark.parametrize("field,value", [("email", "other@example.com"),
                                         ("phone", "+86 139 0013 9000")])
def test_patch_onto_another_leads_email_or_phone_is_409_naming_it(leads, field, value):
    other = create(leads, name="Li Na", email="other@example.com", phone="13900139000")
    lead_id = create(leads, email="wei@example.com")
    lead, tag = read(leads, lead_id)
    resp = leads.patch(f"/api/v1/leads/{lead_id}", json={field: value},
                       headers={"If-Match": tag})
    assert resp.status_code == 409
    assert resp.json()["existing_id"] == other
    assert read(leads, lead_id)[0][field] == lead[field]


@pytest.mark.parametrize("field,value", [("email", "not-an-email"), ("phone", "12"),
                                         ("name", "  "), ("country", "XX"), ("nope", 1)])
def test_bad_patch_field_is_400_naming_it(leads, field, value):
    lead_id = create(leads, email="wei@example.com")
    _, tag = read(leads, lead_id)
    resp = leads.patch(f"/api/v1/leads/{lead_id}", json={field: value},
                       headers={"If-Match": tag})
    assert resp.status_code == 400
    assert field in resp.json()["errors"]


@pytest.fixture
def people(leads):
    return {
        "wei": create(leads, name="Wei Zhang", email="Wei@Acme.cn", phone="+8613800138000",
                      company="ACME Inc."),
        "li": create(leads, name="Li Na", email="li@beta.cn", phone="13900139000",
                     company="Beta 有限公司"),
        "acme": create(leads, name="Acme Buyer", email="buyer@gamma.cn", company="Gamma"),
    }


@pytest.mark.parametrize("q,by,expected", [
    ("138 0013 8000", "any", ["wei"]),
    ("+86 139", "phone", ["li"]),
    ("WEI@acme", "any", ["wei"]),
    ("li@", "email", ["li"]),
    ("acme", "company", ["wei"]),
    ("beta", "company", ["li"]),
    ("wei z", "name", ["wei"]),
    ("acme", "any", ["acme", "wei"]),
])
def test_search_by_each_normalised_key(leads, people, q, by, expected):
    resp = leads.get("/api/v1/leads/search", params={"q": q, "by": by})
    assert resp.status_code == 200, resp.text
    assert sorted(r["id"] for r in resp.json()["items"]) == sorted(people[k] for k in expected)


def test_search_pages_by_cursor_and_filters(leads, people):
    seen, cursor = [], None
    while True:
        params = {"q": "a", "by": "any", "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = leads.get("/api/v1/leads/search", params=params).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted([people["wei"], people["acme"]])  # acme inc., acme buyer
    none = leads.get("/api/v1/leads/search", params={"q": "acme", "status": "qualified"})
    assert none.json()["items"] == []


def test_a_rep_searches_only_their_own_leads(leads, people, api, bearer):
    rep = api({"WEB_SERVER_ADDRESS": leads.base.split("//")[1]},
              auth=bearer("rep", sub="bob", team="gc"))
    assert rep.get("/api/v1/leads/search", params={"q": "acme"}).json()["items"] == []
    ann = api({"WEB_SERVER_ADDRESS": leads.base.split("//")[1]},
              auth=bearer("rep", sub="ann", team="gc"))
    assert len(ann.get("/api/v1/leads/search", params={"q": "acme"}).json()["items"]) == 2


def test_a_disqualified_lead_recycles_into_nurture_and_comes_back(leads):
    lead_id = create(leads, email="wei@example.com")
    assert leads.post(f"/api/v1/leads/{lead_id}/status",
                      json={"status": "disqualified", "reason": "no budget"}).status_code == 200
    resp = leads.post(f"/api/v1/leads/{lead_id}/recycle", json={"reason": "budget in Q3"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "nurture" and resp.json()["reason"] == "budget in Q3"
    assert resp.json()["recycled_from"] == "disqualified"
    again = leads.post(f"/api/v1/leads/{lead_id}/recycle", json={"reason": "again"})
    assert again.status_code == 409
    back = leads.post(f"/api/v1/leads/{lead_id}/status", json={"status": "contacted"})
    assert back.status_code == 200 and back.json()["status"] == "contacted"
    events = leads.events.drain(expect=5, timeout=5)
    assert [e["type"] for e in events] == ["lead.created", "lead.assigned", "lead.disqualified",
                                           "lead.recycled", "lead.contacted"]
    assert events[3]["data"]["from_status"] == "disqualified"
    assert events[4]["data"]["status"] == "contacted"


@pytest.mark.parametrize("body,expected", [
    ({"reason": "spam"}, ("spam", None)),
    ({"reason": "other", "reason_text": "moved abroad"}, ("other", "moved abroad")),
    ({"reason": "no fit at all"}, ("other", "no fit at all")),
])
def test_disqualify_reasons_are_a_picklist_with_other_and_text(leads, body, expected):
    lead_id = create(leads, email="wei@example.com")
    resp = leads.post(f"/api/v1/leads/{lead_id}/status",
                      json={"status": "disqualified", **body})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["reason"], resp.json()["reason_text"]) == expected
    event = [e for e in leads.events.drain(expect=3, timeout=5)
             if e["type"] == "lead.disqualified"][0]
    assert (event["data"]["reason"], event["data"]["reason_text"]) == expected


def test_other_without_text_is_400_naming_reason_text(leads):
    lead_id = create(leads, email="wei@example.com")
    resp = leads.post(f"/api/v1/leads/{lead_id}/status",
                      json={"status": "disqualified", "reason": "other"})
    assert resp.status_code == 400 and "reason_text" in resp.json()["errors"]


def test_a_follow_up_is_completed_or_cancelled_once(leads):
    lead_id = create(leads, email="wei@example.com")
    tasks = [leads.post(f"/api/v1/leads/{lead_id}/tasks",
                        json={"due_at": "2030-01-01T09:00:00Z", "note": n}).json()
             for n in ("call", "mail")]
    done = leads.post(f"/api/v1/leads/{lead_id}/tasks/{tasks[0]['id']}/complete")
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert done.json()["finished_by"] == "ada"
    gone = leads.post(f"/api/v1/leads/{lead_id}/tasks/{tasks[1]['id']}/cancel")
    assert gone.status_code == 200 and gone.json()["status"] == "cancelled"
    assert leads.post(f"/api/v1/leads/{lead_id}/tasks/{tasks[1]['id']}/complete"
                      ).status_code == 409
    assert leads.post(f"/api/v1/leads/{lead_id}/tasks/{tasks[1]['id']}/undo"
                      ).status_code == 404
    other = create(leads, name="Li", email="li@example.com")
    assert leads.post(f"/api/v1/leads/{other}/tasks/{tasks[0]['id']}/cancel"
                      ).status_code == 404


def test_typed_lead_fields_are_checked_on_capture_and_edit(leads):
    resp = leads.post("/api/v1/leads/custom-fields", json={
        "key": "seats", "type": "number", "min": "1",
        "labels": {"en": "Seats", "zh-CN": "席位"}})
    assert resp.status_code == 201, resp.text
    bad = leads.post("/api/v1/leads", json={"name": "Wei", "email": "w@acme.example",
                                            "custom": {"seats": 0}})
    assert bad.status_code == 400 and "seats" in bad.json()["errors"]["custom"]
    lead_id = create(leads, email="wei@example.com", custom={"seats": "12.5", "note": "x"})
    lead, tag = read(leads, lead_id)
    assert lead["custom"] == {"seats": "12.5", "note": "x"}
    resp = leads.patch(f"/api/v1/leads/{lead_id}", json={"custom": {"seats": "many"}},
                       headers={"If-Match": tag})
    assert resp.status_code == 400 and "seats" in resp.json()["errors"]["custom"]
    doc = leads.get("/openapi.json").json()
    seats = doc["components"]["schemas"]["LeadIn"]["properties"]["custom"]["properties"]
    assert "席位" in seats["seats"]["description"]
