"""Erasure of a lead's personal data (real FerretDB and RabbitMQ, leads and deals running):
the lead keeps its id and status and loses its personal data, dedup lets the address in
again, lead.erased carries the id only, deals drops the contact it copied, a repeat
changes nothing, and only admins may erase."""
import pytest

from tests.integration.deals.deals_support import start_deals
from tests.support.amqp import Subscriber
from tests.support.wait import wait_for

ASSIGNMENT = {"fallback_queue": "inbox", "default_cap": 5, "caps": {},
              "territories": [{"name": "dach", "countries": ["DE"], "team": "dach"}],
              "teams": {"dach": ["ann"]}}
PERSON = {"name": "Zhang Wei", "email": "zhang.wei@example.cn", "phone": "+49 30 1234567",
          "company": None, "country": "DE", "region": "Berlin", "source": "web_form",
          "utm": {"campaign": "autumn"}, "custom": {"birthday": "1990-01-01", "seats": 12}}


@pytest.fixture
def platform(container_factory, make_config, api, rabbit_config, bearer):
    from leads.service import LeadsService

    leads_config = make_config("leads", ASSIGNMENT=ASSIGNMENT, SLA={"response_minutes": 0},
                               ERASURE={"keep_custom": ["seats"]})
    container_factory(LeadsService, leads_config).start()
    deals_config = make_config("deals")
    start_deals(container_factory, deals_config)
    leads, deals = api(leads_config), api(deals_config)
    leads.admin = bearer("admin", sub="dpo-1", team="ops")
    leads.rep = bearer("rep", sub="ann", team="dach")
    return leads, deals


def converted_lead(leads):
    lead_id = leads.post("/api/v1/leads", json=PERSON).json()["id"]
    assert leads.post(f"/api/v1/leads/{lead_id}/activities", json={
        "type": "call", "summary": "Zhang Wei asked for a quote, mobile 0151 2345678"}
    ).status_code == 201
    assert leads.post(f"/api/v1/leads/{lead_id}/tasks", json={
        "due_at": "2030-01-01T09:00:00Z", "note": "call Zhang Wei back"}).status_code == 201
    for status in ("contacted", "qualified"):
        assert leads.post(f"/api/v1/leads/{lead_id}/status",
                          json={"status": status}).status_code == 200
    assert leads.post(f"/api/v1/leads/{lead_id}/convert", json={}).status_code == 200
    return lead_id


def deal_of(deals, lead_id):
    items = deals.get("/api/v1/deals", params={"lead_id": lead_id}).json()["items"]
    return items[0] if items else None


def test_erasure_blanks_the_lead_and_deals_drops_the_contact(platform, mongo_db,
                                                             rabbit_config):
    leads, deals = platform
    erased_events = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.erased")
    lead_id = converted_lead(leads)
    deal = wait_for(lambda: deal_of(deals, lead_id))
    assert deal["contact"]["email"] == "zhang.wei@example.cn"
    assert deal["name"] == "Zhang Wei"

    resp = leads.post(f"/api/v1/leads/{lead_id}/erase", headers=leads.admin)
    assert resp.status_code == 200, resp.text
    lead = resp.json()
    assert (lead["id"], lead["status"], lead["country"]) == (lead_id, "converted", "DE")
    assert (lead["name"], lead["email"], lead["phone"], lead["company"], lead["region"]) == (
        "", None, None, None, None)
    assert lead["custom"] == {"seats": 12}
    assert lead["utm"] == {"campaign": "autumn"}
    assert lead["erased_at"] is not None

    stored = mongo_db.leads.find_one({"_id": lead_id})
    assert stored["email_key"] == f"none:{lead_id}" and stored["phone_key"] == f"none:{lead_id}"
    assert all(a["summary"] is None for a in stored["activities"])
    erasure = stored["activities"][-1]
    assert (erasure["type"], erasure["actor"]) == ("erasure", "dpo-1")
    assert stored["erased"]["by"] == "dpo-1"
    assert [t["note"] for t in mongo_db.tasks.find({"lead_id": lead_id})] == [None]
    assert "Zhang" not in repr(leads.get(f"/api/v1/leads/{lead_id}/timeline").json())

    (event,) = erased_events.drain(expect=1, timeout=10)
    assert event["data"] == {"lead_id": lead_id, "status": "converted"}
    assert event["actor"] == "dpo-1"

    deal = wait_for(lambda: (d := deal_of(deals, lead_id)) and d["contact"] is None and d)
    assert deal and deal["name"] == "(erased contact)"
    # (events already written may still wait in the outbox for the relay: they left before
    # the erasure, as far as their subscribers are concerned)
    assert "Zhang" not in repr(mongo_db.deals.find_one({"lead_id": lead_id},
                                                       {"outbox": 0, "outbox_since": 0}))

    again = leads.post(f"/api/v1/leads/{lead_id}/erase", headers=leads.admin)
    assert again.status_code == 200 and again.json()["version"] == lead["version"]
    assert erased_events.drain(timeout=1.5) == []
    erased_events.close()

    # the address is free again: the same person may be captured as a new lead
    assert leads.post("/api/v1/leads", json=PERSON).status_code == 201


def test_only_an_admin_may_erase(platform, mongo_db):
    leads, _ = platform
    lead_id = leads.post("/api/v1/leads", json=PERSON).json()["id"]
    resp = leads.post(f"/api/v1/leads/{lead_id}/erase", headers=leads.rep)
    assert resp.status_code == 403
    assert mongo_db.leads.find_one({"_id": lead_id})["email"] == "zhang.wei@example.cn"


def test_erasing_an_unknown_lead_is_404(platform):
    leads, _ = platform
    assert leads.post("/api/v1/leads/nope/erase", headers=leads.admin).status_code == 404
