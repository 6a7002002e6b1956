"""The admin's historical import (?history=true) against real FerretDB and RabbitMQ: only
admins once roles apply, times need their offset, the events carry the past times in their
data while their envelopes carry the real time, the lead and the import record say who
loaded it, and a converted lead's deal opens at its conversion with its history."""
import datetime as dt

import pytest

from kit.events import SEQUENCE
from kit.fields import utcnow
from tests.integration.deals.deals_support import start_deals, wait_for
from tests.support.amqp import Subscriber
from tests.support.tokens import token

HEADER = ("name,email,phone,country,source,created_at,status,contacted_at,qualified_at,"
          "converted_at,disqualified_at,reason,amount,currency,owner,pipeline\n")
CREATED = "2025-11-03T09:00:00+08:00"


def when(text):
    return dt.datetime.fromisoformat(text)


@pytest.fixture
def config(make_config):
    return make_config("leads")


@pytest.fixture
def leads(container_factory, config, api):
    from leads.service import LeadsService

    container_factory(LeadsService, config).start()
    return api(config)


def post(client, body, *roles, key="history-1", history="true"):
    headers = {"Content-Type": "text/csv", "Authorization": f"Bearer {token(*roles)}"}
    if key:
        headers["Idempotency-Key"] = key
    return client.post("/api/v1/leads/import", data=body.encode(), headers=headers,
                       params={"history": history})


def converted_row(email="li.na@example.cn", created=CREATED):
    return (f"李娜,{email},+86 138 0013 8001,CN,event,{created},converted,"
            "2025-11-03T10:30:00+08:00,2025-11-10T10:00:00+08:00,2025-11-20T10:00:00+08:00,,,"
            "12000.50,CNY,rep-gc-1,seed\n")


@pytest.mark.parametrize("roles", [("rep",), ("manager",), ()])
def test_a_historical_import_is_refused_to_non_admins(leads, mongo_db, roles):
    resp = post(leads, HEADER + converted_row(), *roles)
    assert resp.status_code == 403, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert mongo_db.leads.count_documents({}) == 0


def test_without_history_the_same_columns_stay_custom_fields_for_any_importer(leads, mongo_db):
    resp = post(leads, HEADER + converted_row(), "integration", history="false")
    assert resp.status_code == 200 and resp.json()["created"] == 1
    lead = mongo_db.leads.find_one({})
    assert lead["status"] == "new" and lead["custom"]["status"] == "converted"


@pytest.mark.parametrize("column,value,field", [
    ("created_at", "2025-11-03T09:00:00", "created_at"),
    ("created_at", "", "created_at"),
    ("contacted_at", "2025-11-03T10:30:00", "contacted_at"),
    ("converted_at", "2099-01-01T00:00:00+00:00", "converted_at"),
    ("qualified_at", "2025-11-01T00:00:00+08:00", "qualified_at"),
])
def test_history_times_need_an_offset_order_and_the_past(leads, mongo_db, column, value,
                                                         field):
    row = dict(zip(HEADER.strip().split(","), converted_row().strip().split(","),
                   strict=True))
    row[column] = value
    resp = post(leads, HEADER + ",".join(row.values()) + "\n", "admin")
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert (result["created"], result["invalid"]) == (0, 1)
    assert field in result["errors"][0]["errors"]
    assert mongo_db.leads.count_documents({}) == 0


def test_a_historical_import_needs_an_idempotency_key(leads, mongo_db):
    resp = post(leads, HEADER + converted_row(), "admin", key=None)
    assert resp.status_code == 400 and "Idempotency-Key" in resp.json()["detail"]
    assert mongo_db.leads.count_documents({}) == 0


def test_events_carry_the_past_times_and_the_lead_says_who_loaded_it(leads, mongo_db,
                                                                      rabbit_config):
    events = Subscriber(rabbit_config["AMQP_URI"], "leads")
    before = utcnow()
    resp = post(leads, HEADER + converted_row(), "admin")
    assert resp.status_code == 200, resp.text
    assert resp.json()["created"] == 1 and resp.json()["historical"] is True
    got = {e["type"]: e for e in events.drain(expect=5)}
    assert sorted(e[SEQUENCE] for e in got.values()) == \
        [1, 2, 3, 4, 5]
    created = dt.datetime.fromisoformat(CREATED)
    assert dt.datetime.fromisoformat(got["lead.created"]["data"]["created_at"]) == created
    contacted = got["lead.contacted"]["data"]
    assert contacted["first_response_seconds"] == 5400
    assert dt.datetime.fromisoformat(got["lead.qualified"]["data"]["qualified_at"]) == \
        dt.datetime(2025, 11, 10, 2, 0, tzinfo=dt.UTC)
    converted = got["lead.converted"]["data"]
    assert dt.datetime.fromisoformat(converted["converted_at"]) == \
        dt.datetime(2025, 11, 20, 2, 0, tzinfo=dt.UTC)
    assert (converted["amount"], converted["currency"], converted["pipeline_id"]) == \
        ("12000.50", "CNY", "seed")
    for event in got.values():  # the envelope is when it was emitted, and by whom
        assert dt.datetime.fromisoformat(event["time"]) >= before
        assert event["actor"] == "ada"

    lead = mongo_db.leads.find_one({})
    assert resp.json()["leads"] == [{"line": 2, "id": lead["_id"]}]
    assert (lead["status"], lead["owner_id"], lead["team"]) == \
        ("converted", "rep-gc-1", "greater_china")
    assert lead["response_due_at"] is None
    assert lead["imported"]["by"] == "ada" and lead["imported"]["historical"] is True
    assert [a["type"] for a in lead["activities"]] == ["import"]
    record = mongo_db.imports.find_one({"_id": "history-1"})
    assert record["by"] == "ada" and record["historical"] is True
    # a converted lead holds no slot of its owner's cap
    assert (mongo_db.reps.find_one({"_id": "rep-gc-1"}) or {}).get("open", 0) == 0

    again = post(leads, HEADER + converted_row(), "admin")
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert mongo_db.leads.count_documents({}) == 1


def test_a_converted_historical_lead_opens_its_deal_at_the_conversion(
        leads, container_factory, make_config, api, rabbit_config):
    deals_config = make_config("deals")
    start_deals(container_factory, deals_config)
    deals = api(deals_config)
    admin = {"Authorization": f"Bearer {token('admin')}"}
    stages = [{"key": "discovery", "name": "Discovery", "probability": 10},
              {"key": "proposal", "name": "Proposal", "probability": 50,
               "required_fields": ["needs_summary"]},
              {"key": "won", "name": "Won", "probability": 100,
               "required_fields": ["amount", "currency"]},
              {"key": "lost", "name": "Lost", "probability": 0}]
    pipeline = deals.post("/api/v1/pipelines", json={"name": "Seed", "stages": stages},
                          headers=admin)
    assert pipeline.status_code == 201, pipeline.text
    row = converted_row().replace(",seed\n", f",{pipeline.json()['id']}\n")
    assert post(leads, HEADER + row, "admin").status_code == 200

    def the_deal():
        page = deals.get("/api/v1/deals", headers=admin).json()["items"]
        return page[0] if page else None

    deal = wait_for(the_deal, timeout=20)
    assert deal, "lead.converted opened no deal"
    assert deal["pipeline_id"] == pipeline.json()["id"]
    assert when(deal["created_at"]) == dt.datetime(2025, 11, 20, 2, 0, tzinfo=dt.UTC)
    assert (deal["amount"], deal["currency"]) == ("12000.50", "CNY")

    steps = [{"at": "2025-11-25T10:00:00+08:00", "action": "update",
              "fields": {"needs_summary": "ERP rollout"}},
             {"at": "2025-11-26T10:00:00+08:00", "action": "move", "stage": "proposal"},
             {"at": "2025-12-02T10:00:00+08:00", "action": "won"}]
    item = {"deal_id": deal["id"], "version": deal["version"], "steps": steps}
    refused = deals.post("/api/v1/deals/history", json={"items": [item]},
                         headers={"Authorization": f"Bearer {token('manager')}"})
    assert refused.status_code == 403
    done = deals.post("/api/v1/deals/history", json={"items": [item]}, headers=admin)
    assert done.status_code == 200, done.text
    assert done.json()["items"][0]["outcome"] == "applied"
    after = deals.get(f"/api/v1/deals/{deal['id']}", headers=admin).json()
    assert after["status"] == "won"
    assert when(after["closed_at"]) == dt.datetime(2025, 12, 2, 2, 0, tzinfo=dt.UTC)
    assert after["version"] == deal["version"] + 4
    assert all(h["historical"] for h in after["history"][1:])
    assert [(h["to"], h["by"]) for h in after["history"][1:]] == \
        [("proposal", "ada"), ("won", "ada")]

    repeat = deals.post("/api/v1/deals/history", json={"items": [item]}, headers=admin)
    assert repeat.json()["items"][0]["outcome"] == "stale"
    assert deals.get(f"/api/v1/deals/{deal['id']}", headers=admin).json()["version"] == \
        after["version"]


def test_a_historical_row_naming_an_unknown_owner_is_refused(leads, mongo_db):
    row = converted_row().replace(",rep-gc-1,", ",nobody-x,")
    resp = post(leads, HEADER + row, "admin")
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["created"] == 0
    assert report["errors"][0]["errors"]["owner_id"] == ["Unknown person."]
    assert mongo_db.leads.count_documents({}) == 0
