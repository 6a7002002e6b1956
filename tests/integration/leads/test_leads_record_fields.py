"""Typed custom fields of accounts and contacts (real FerretDB and RabbitMQ): admins define
them with labels in en and zh-CN, values are checked on create (POST) and edit (PATCH,
If-Match) with a 400 naming the field that writes nothing, and /openapi.json shows them."""
import pytest

from tests.support.amqp import Subscriber

FIELDS = [
    {"key": "motto", "type": "text", "max_length": 6, "labels": {"en": "Motto", "zh-CN": "口号"}},
    {"key": "seats", "type": "number", "min": "1", "max": "1000",
     "labels": {"en": "Seats", "zh-CN": "席位"}},
    {"key": "budget", "type": "money", "currency": "CNY",
     "labels": {"en": "Budget", "zh-CN": "预算"}},
    {"key": "renewal", "type": "date", "labels": {"en": "Renewal", "zh-CN": "续约日期"}},
    {"key": "tier", "type": "picklist", "labels": {"en": "Tier", "zh-CN": "等级"},
     "options": [{"key": "gold", "labels": {"en": "Gold", "zh-CN": "金牌"}},
                 {"key": "silver", "labels": {"en": "Silver", "zh-CN": "银牌"}}]},
    {"key": "regions", "type": "multi_picklist", "labels": {"en": "Regions", "zh-CN": "覆盖区域"},
     "options": [{"key": "east", "labels": {"en": "East", "zh-CN": "华东"}},
                 {"key": "south", "labels": {"en": "South", "zh-CN": "华南"}}]},
    {"key": "vip", "type": "boolean", "labels": {"en": "VIP", "zh-CN": "重要客户"}},
]
GOOD = {"motto": "客户至上", "seats": "12.5", "budget": "1000.5", "renewal": "2025-03-01",
        "tier": "gold", "regions": ["east", "south"], "vip": True, "free_note": "x"}
STORED = {**GOOD, "budget": "1000.50"}
BAD = [  # one case per type and error: (field, value, words of the message)
    ("motto", 12, "Must be text"),
    ("motto", "一二三四五六七", "At most 6 characters"),
    ("seats", "many", "Must be a number"),
    ("seats", True, "Must be a number"),
    ("seats", 0, "Must not be less than 1"),
    ("seats", 1001, "Must not be more than 1000"),
    ("budget", "abc", "decimal string"),
    ("budget", "1e3", "decimal string"),
    ("budget", "-1", "decimal string"),
    ("budget", "1.001", "at most 2 decimal places"),
    ("renewal", "2025-13-01", "YYYY-MM-DD"),
    ("renewal", "20250301", "YYYY-MM-DD"),
    ("tier", "bronze", "Must be one of: gold, silver"),
    ("regions", "east", "distinct options"),
    ("regions", ["east", "east"], "distinct options"),
    ("regions", ["west"], "distinct options"),
    ("vip", "yes", "true or false"),
]
ENTITIES = ("account", "contact")


@pytest.fixture
def leads(container_factory, make_config, api, rabbit_config):
    from leads.service import LeadsService

    config = make_config("leads")
    events = Subscriber(rabbit_config["AMQP_URI"], "leads", "*.updated",
                        name="test-record-fields")
    container_factory(LeadsService, config).start()
    client = api(config)
    client.events = events
    for entity in ENTITIES:
        for definition in FIELDS:
            resp = client.post(f"/api/v1/{entity}s/custom-fields", json=definition)
            assert resp.status_code == 201, resp.text
    yield client
    events.close()


def account(client, **fields):
    resp = client.post("/api/v1/accounts", json={"name": "上海示例科技有限公司", **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


def create_body(client, entity, custom):
    if entity == "account":
        return {"name": "北京示例有限公司", "custom": custom}
    return {"account_id": account(client)["id"], "name": "张伟", "email": "zw@example.cn",
            "custom": custom}


def count(mongo_db, entity):
    return mongo_db[entity + "s"].count_documents({})


@pytest.mark.parametrize("entity", ENTITIES)
def test_good_values_are_stored_in_their_canonical_form(leads, entity):
    resp = leads.post(f"/api/v1/{entity}s", json=create_body(leads, entity, GOOD))
    assert resp.status_code == 201, resp.text
    assert resp.json()["custom"] == STORED
    got = leads.get(f"/api/v1/{entity}s/{resp.json()['id']}")
    assert got.json()["custom"] == STORED


@pytest.mark.parametrize("entity", ENTITIES)
@pytest.mark.parametrize("field, value, message", BAD)
def test_a_bad_value_on_create_is_400_naming_the_field_and_writes_nothing(
        leads, mongo_db, entity, field, value, message):
    body = create_body(leads, entity, {**GOOD, field: value})
    before = count(mongo_db, entity)
    resp = leads.post(f"/api/v1/{entity}s", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    errors = resp.json()["errors"]["custom"]
    assert list(errors) == [field] and message in errors[field][0]
    assert count(mongo_db, entity) == before


@pytest.mark.parametrize("entity", ENTITIES)
@pytest.mark.parametrize("field, value, message", BAD[::3])
def test_a_bad_value_on_edit_is_400_naming_the_field_and_changes_nothing(
        leads, entity, field, value, message):
    created = leads.post(f"/api/v1/{entity}s", json=create_body(leads, entity, GOOD)).json()
    path = f"/api/v1/{entity}s/{created['id']}"
    tag = leads.get(path).headers["ETag"]
    resp = leads.patch(path, json={"custom": {field: value}}, headers={"If-Match": tag})
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["errors"]["custom"][field][0]
    after = leads.get(path)
    assert after.headers["ETag"] == tag and after.json()["custom"] == STORED


@pytest.mark.parametrize("entity", ENTITIES)
def test_an_edit_merges_custom_values_at_the_version_read(leads, entity):
    created = leads.post(f"/api/v1/{entity}s", json=create_body(leads, entity, GOOD)).json()
    path = f"/api/v1/{entity}s/{created['id']}"
    tag = leads.get(path).headers["ETag"]
    resp = leads.patch(path, json={"custom": {"tier": "silver", "vip": None}},
                       headers={"If-Match": tag})
    assert resp.status_code == 200, resp.text
    want = {k: v for k, v in {**STORED, "tier": "silver"}.items() if k != "vip"}
    assert resp.json()["custom"] == want
    stale = leads.patch(path, json={"custom": {"tier": "gold"}}, headers={"If-Match": tag})
    assert stale.status_code == 409
    assert leads.patch(path, json={"custom": {"tier": "gold"}}).status_code == 428
    assert leads.get(path).json()["custom"] == want
    entries = leads.get(path + "/timeline").json()["entries"]
    assert [e["type"] for e in entries] == ["created", "update"]
    (event,) = leads.events.drain(expect=1, timeout=5, distinct=True)
    assert event["type"] == f"{entity}.updated" and event["subject"] == created["id"]
    assert event["data"]["changed"] == ["custom"]  # the fields, never their values


def test_the_definitions_are_listed_per_entity_and_shown_in_openapi(leads):
    resp = leads.post("/api/v1/accounts/custom-fields", json={
        "key": "industry", "type": "text", "labels": {"en": "Industry", "zh-CN": "行业"}})
    assert resp.status_code == 201
    keys = {e: [f["key"] for f in leads.get(f"/api/v1/{e}s/custom-fields").json()["items"]]
            for e in ENTITIES}
    assert "industry" in keys["account"] and "industry" not in keys["contact"]
    assert leads.post("/api/v1/accounts/custom-fields", json={
        "key": "industry", "type": "text",
        "labels": {"en": "Industry", "zh-CN": "行业"}}).status_code == 409
    schemas = leads.get("/openapi.json").json()["components"]["schemas"]
    for name in ("AccountIn", "AccountPatch", "ContactIn", "ContactPatch"):
        typed = schemas[name]["properties"]["custom"]["properties"]
        assert typed["tier"]["enum"] == ["gold", "silver"]
        assert "等级" in typed["tier"]["description"]
        assert typed["vip"]["type"] == "boolean"
    assert "industry" in schemas["AccountIn"]["properties"]["custom"]["properties"]
    assert "industry" not in schemas["ContactIn"]["properties"]["custom"]["properties"]


def test_only_admins_define_fields(leads, bearer):
    resp = leads.post("/api/v1/contacts/custom-fields", headers=bearer("rep", sub="ann"),
                      json={"key": "hobby", "type": "text",
                            "labels": {"en": "Hobby", "zh-CN": "爱好"}})
    assert resp.status_code == 403
