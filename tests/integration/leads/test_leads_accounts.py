"""Accounts and contacts (real FerretDB and RabbitMQ, leads and deals running): conversion
into a new account and into an existing one (by company name, by e-mail domain), a
returning customer's new lead, the deal keeping the ids, dedup and merge."""
import pytest

from tests.integration.deals.deals_support import start_deals
from tests.support.amqp import Subscriber
from tests.support.wait import wait_for

ASSIGNMENT = {"fallback_queue": "inbox", "default_cap": 50, "caps": {},
              "territories": [{"name": "dach", "countries": ["DE"], "team": "dach"}],
              "teams": {"dach": ["ann"]}}


@pytest.fixture
def platform(container_factory, make_config, api, rabbit_config):
    from leads.service import LeadsService

    leads_config = make_config("leads", ASSIGNMENT=ASSIGNMENT, SLA={"response_minutes": 0})
    events = Subscriber(rabbit_config["AMQP_URI"], "leads", "#", name="test-accounts")
    container_factory(LeadsService, leads_config).start()
    deals_config = make_config("deals")
    start_deals(container_factory, deals_config)
    leads, deals = api(leads_config), api(deals_config)
    leads.events = events
    yield leads, deals
    events.close()


def convert(leads, **fields):
    body = {"name": "Ada Lovelace", "country": "DE", "source": "web_form", **fields}
    resp = leads.post("/api/v1/leads", json=body)
    assert resp.status_code == 201, resp.text
    lead_id = resp.json()["id"]
    for status in ("contacted", "qualified"):
        assert leads.post(f"/api/v1/leads/{lead_id}/status",
                          json={"status": status}).status_code == 200
    resp = leads.post(f"/api/v1/leads/{lead_id}/convert", json={})
    assert resp.status_code == 200, resp.text
    return resp.json()


def deal_of(deals, lead_id):
    items = deals.get("/api/v1/deals", params={"lead_id": lead_id}).json()["items"]
    return items[0] if items else None


def test_conversion_creates_an_account_and_contact_and_the_deal_keeps_them(platform):
    leads, deals = platform
    lead = convert(leads, email="ada@engines.example", company="Analytical Engines Ltd.",
                   phone="+49 30 1234567")
    assert lead["account_id"] and lead["contact_id"]
    account = leads.get(f"/api/v1/accounts/{lead['account_id']}").json()
    assert account["name"] == "Analytical Engines Ltd." and account["domain"] == "engines.example"
    contact = leads.get(f"/api/v1/contacts/{lead['contact_id']}").json()
    assert (contact["email"], contact["account_id"], contact["lead_ids"]) == (
        "ada@engines.example", account["id"], [lead["id"]])
    deal = wait_for(lambda: deal_of(deals, lead["id"]))
    assert (deal["account_id"], deal["contact_id"]) == (lead["account_id"], lead["contact_id"])
    types = [e["type"] for e in leads.events.drain(expect=8, timeout=5)]
    assert {"account.created", "contact.created", "lead.converted"} <= set(types)
    converted = [e for e in leads.events.drain(timeout=0.2)]
    assert converted == []
    timeline = leads.get(f"/api/v1/accounts/{account['id']}/timeline").json()["entries"]
    assert [e["type"] for e in timeline] == ["created", "conversion"]


@pytest.mark.parametrize("second", [
    {"email": "bob@other-mail.example", "company": "ANALYTICAL ENGINES, LTD"},  # by name
    {"email": "bob@engines.example", "company": None},  # by domain
])
def test_a_second_person_of_a_known_company_joins_its_account(platform, second):
    leads, _ = platform
    first = convert(leads, email="ada@engines.example", company="Analytical Engines Ltd.")
    other = convert(leads, name="Bob Babbage", **second)
    assert other["account_id"] == first["account_id"]
    assert other["contact_id"] != first["contact_id"]
    contacts = leads.get("/api/v1/contacts",
                         params={"account_id": first["account_id"]}).json()["items"]
    assert len(contacts) == 2


def test_free_mail_domains_never_match_a_company(platform):
    leads, _ = platform
    first = convert(leads, email="ada@gmail.com", company=None)
    other = convert(leads, name="Bob", email="bob@gmail.com", company=None)
    assert other["account_id"] != first["account_id"]


def test_a_returning_customer_gets_a_new_lead_linked_to_their_account(platform):
    leads, _ = platform
    first = convert(leads, email="ada@engines.example", company="Analytical Engines Ltd.")
    resp = leads.post("/api/v1/leads", json={"name": "Ada Lovelace", "source": "web_form",
                                             "email": "ADA@engines.example"})
    assert resp.status_code == 201, resp.text  # not a duplicate of the converted lead
    again = leads.get(f"/api/v1/leads/{resp.json()['id']}").json()
    assert again["status"] == "new"
    assert (again["account_id"], again["contact_id"]) == (first["account_id"],
                                                          first["contact_id"])
    old = leads.get(f"/api/v1/leads/{first['id']}").json()
    assert old["status"] == "converted" and old["email"] == "ada@engines.example"
    # converting it again links the same contact, which now has both leads
    for status in ("contacted", "qualified"):
        leads.post(f"/api/v1/leads/{again['id']}/status", json={"status": status})
    second = leads.post(f"/api/v1/leads/{again['id']}/convert", json={}).json()
    assert second["contact_id"] == first["contact_id"]
    contact = leads.get(f"/api/v1/contacts/{first['contact_id']}").json()
    assert contact["lead_ids"] == [first["id"], again["id"]]
    timeline = leads.get(f"/api/v1/contacts/{first['contact_id']}/timeline").json()["entries"]
    assert {e.get("lead_id") for e in timeline} >= {first["id"], again["id"]}


def test_accounts_and_contacts_dedup_by_hand_with_409_naming_the_existing(platform, mongo_db):
    leads, _ = platform
    # the service creates its indexes as it starts, in the background
    wait_for(lambda: "phone_key_unique" in mongo_db.contacts.index_information())
    made = leads.post("/api/v1/accounts", json={"name": "Acme GmbH", "domain": "acme.example"})
    assert made.status_code == 201, made.text
    for body in ({"name": "ACME"}, {"name": "Other", "domain": "acme.example"}):
        dup = leads.post("/api/v1/accounts", json=body)
        assert dup.status_code == 409 and dup.json()["existing_id"] == made.json()["id"]
    contact = leads.post("/api/v1/contacts", json={"account_id": made.json()["id"],
                                                   "name": "Wei", "email": "wei@acme.example"})
    assert contact.status_code == 201, contact.text
    dup = leads.post("/api/v1/contacts", json={"account_id": made.json()["id"],
                                               "name": "W.", "email": "Wei@Acme.example"})
    assert dup.status_code == 409 and dup.json()["existing_id"] == contact.json()["id"]


@pytest.mark.parametrize("field,value", [("name", " "), ("domain", "not a domain"),
                                         ("nope", 1)])
def test_bad_account_field_is_400_naming_it(platform, field, value):
    leads, _ = platform
    resp = leads.post("/api/v1/accounts", json={"name": "Acme", field: value})
    assert resp.status_code == 400 and field in resp.json()["errors"]


def test_merging_a_duplicate_moves_its_contacts_and_later_conversions(platform):
    leads, _ = platform
    keep = leads.post("/api/v1/accounts", json={"name": "Acme"}).json()
    dup = leads.post("/api/v1/accounts", json={"name": "Acme Trading",
                                               "domain": "acme.example"}).json()
    contact = leads.post("/api/v1/contacts", json={"account_id": dup["id"], "name": "Wei",
                                                   "email": "wei@acme.example"}).json()
    resp = leads.post(f"/api/v1/accounts/{dup['id']}/merge", json={"into": keep["id"]})
    assert resp.status_code == 200 and resp.json()["merged_into"] == keep["id"]
    assert leads.get(f"/api/v1/contacts/{contact['id']}").json()["account_id"] == keep["id"]
    assert leads.post(f"/api/v1/accounts/{dup['id']}/merge",
                      json={"into": keep["id"]}).status_code == 409
    lead = convert(leads, name="Li", email="li@acme.example", company="Acme Trading")
    assert lead["account_id"] == keep["id"]


def test_erasing_a_converted_lead_erases_the_contact_it_became(platform, mongo_db):
    leads, _ = platform
    lead = convert(leads, email="ada@engines.example", phone="+49 30 1234567",
                   company="Analytical Engines Ltd.")
    path = f"/api/v1/contacts/{lead['contact_id']}"
    assert leads.post("/api/v1/contacts/custom-fields", json={
        "key": "hobby", "type": "text", "labels": {"en": "Hobby", "zh-CN": "爱好"}}
    ).status_code == 201
    edit = leads.patch(path, json={"custom": {"hobby": "chess"}, "title": "CTO"},
                       headers={"If-Match": leads.get(path).headers["ETag"]})
    assert edit.status_code == 200, edit.text
    assert leads.post(f"/api/v1/leads/{lead['id']}/erase").status_code == 200
    contact = leads.get(path).json()
    assert (contact["name"], contact["email"], contact["phone"]) == ("", None, None)
    assert (contact["title"], contact["custom"]) == (None, {})
    stored = mongo_db.contacts.find_one({"_id": lead["contact_id"]})
    assert "chess" not in str(stored) and "CTO" not in str(stored)  # the edit's record too
    again = leads.post("/api/v1/contacts", json={"account_id": lead["account_id"],
                                                 "name": "Ada", "email": "ada@engines.example"})
    assert again.status_code == 201  # the address is free again
