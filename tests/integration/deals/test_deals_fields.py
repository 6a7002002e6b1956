"""Typed custom fields of deals (real FerretDB): an admin defines them with labels in en
and zh-CN, values are checked on write, and "required from stage X" is the stage's gate:
a move without the field is refused with a message that names it."""
import pytest

from tests.integration.deals.deals_support import Client, start_deals

LABELS = {"en": "Budget code", "zh-CN": "预算编号"}


@pytest.fixture
def deals(container_factory, make_config, api):
    config = make_config("deals")
    start_deals(container_factory, config)
    return api(config)


def define(http, **body):
    resp = http.post("/api/v1/deals/custom-fields", json={"labels": LABELS, **body})
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_a_field_required_from_a_stage_blocks_the_move_naming_it(deals):
    made = define(deals, key="budget_code", type="text", max_length=20,
                  required_from=[{"pipeline_id": "default", "stage": "needs_confirmed"}])
    assert made["required_from"] == [{"pipeline_id": "default", "stage": "needs_confirmed"}]
    pipeline = deals.get("/api/v1/pipelines/default").json()
    stage = next(s for s in pipeline["stages"] if s["key"] == "needs_confirmed")
    assert "budget_code" in stage["required_fields"]  # the gate holds the rule

    client = Client(deals)
    deal = client.create(name="Acme", checklist=["discovery_call_held"])
    resp = client.act(deal, "stage", {"stage": "needs_confirmed"})
    assert resp.status_code == 409
    assert "budget_code (Budget code)" in resp.json()["detail"]
    assert resp.json()["missing_fields"] == ["budget_code"]
    # skipping past the stage needs it too
    assert client.act(deal, "stage", {"stage": "proposal"}).status_code == 409

    deal = client.must(deal, "", {"custom": {"budget_code": "B-17"}}, method="patch")
    moved = client.must(deal, "stage", {"stage": "needs_confirmed"})
    assert moved["stage"] == "needs_confirmed"
    listed = deals.get("/api/v1/deals/custom-fields").json()["items"]
    assert [(f["key"], f["labels"]["zh-CN"]) for f in listed] == [("budget_code", "预算编号")]


@pytest.mark.parametrize("definition,value,stored", [
    ({"type": "number", "min": "0", "max": "100"}, "12.5", "12.5"),
    ({"type": "money", "currency": "CNY"}, "100.5", "100.50"),
    ({"type": "date"}, "2026-12-01", "2026-12-01"),
    ({"type": "boolean"}, True, True),
    ({"type": "picklist", "options": [{"key": "a", "labels": LABELS}]}, "a", "a"),
    ({"type": "multi_picklist", "options": [{"key": "a", "labels": LABELS},
                                            {"key": "b", "labels": LABELS}]},
     ["b", "a"], ["b", "a"]),
])
def test_values_are_stored_as_their_type_says(deals, definition, value, stored):
    define(deals, key="f", **definition)
    deal = Client(deals).create(name="Acme", custom={"f": value, "free": "kept"})
    assert deal["custom"] == {"f": stored, "free": "kept"}


@pytest.mark.parametrize("definition,value", [
    ({"type": "text", "max_length": 3}, "long"),
    ({"type": "number", "max": "10"}, 11),
    ({"type": "number"}, "ten"),
    ({"type": "money", "currency": "JPY"}, "1.5"),
    ({"type": "date"}, "01/12/2026"),
    ({"type": "boolean"}, "yes"),
    ({"type": "picklist", "options": [{"key": "a", "labels": LABELS}]}, "z"),
    ({"type": "multi_picklist", "options": [{"key": "a", "labels": LABELS}]}, ["a", "a"]),
])
def test_a_bad_value_is_400_naming_the_field_and_nothing_is_stored(deals, mongo_db,
                                                                    definition, value):
    define(deals, key="f", **definition)
    resp = deals.post("/api/v1/deals", json={"name": "Acme", "custom": {"f": value}})
    assert resp.status_code == 400, resp.text
    assert "f" in resp.json()["errors"]["custom"]
    assert mongo_db.deals.count_documents({}) == 0


@pytest.mark.parametrize("body,field", [
    ({"key": "Bad Key", "type": "text"}, "key"),
    ({"key": "amount", "type": "text"}, "key"),
    ({"key": "x", "type": "colour"}, "type"),
    ({"key": "x", "type": "text", "labels": {"en": "X"}}, "labels"),
    ({"key": "x", "type": "picklist"}, "options"),
    ({"key": "x", "type": "money"}, "currency"),
    ({"key": "x", "type": "text", "min": "1"}, "min"),
    ({"key": "x", "type": "text", "required_from": [{"stage": "nowhere"}]}, "required_from"),
])
def test_a_bad_definition_is_400_naming_it(deals, body, field):
    resp = deals.post("/api/v1/deals/custom-fields", json={"labels": LABELS, **body})
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["errors"]


def test_only_admins_define_fields(deals, bearer):
    resp = deals.post("/api/v1/deals/custom-fields", json={"key": "x", "type": "text",
                                                     "labels": LABELS},
                      headers=bearer("manager", sub="mia", team="dach"))
    assert resp.status_code == 403


def test_the_openapi_document_shows_the_defined_fields(deals):
    define(deals, key="tier", type="picklist",
           options=[{"key": "gold", "labels": {"en": "Gold", "zh-CN": "金牌"}}])
    doc = deals.get("/openapi.json").json()
    for name in ("DealIn", "DealPatch"):
        tier = doc["components"]["schemas"][name]["properties"]["custom"]["properties"]["tier"]
        assert tier["enum"] == ["gold"] and "预算编号" in tier["description"]


@pytest.mark.parametrize("body,expected", [
    ({"reason": "price"}, ("price", None)),
    ({"reason": "other", "reason_text": "merger"}, ("other", "merger")),
    ({"reason": "went quiet"}, ("other", "went quiet")),
])
def test_lost_reasons_are_the_pipelines_picklist(deals, body, expected):
    pipeline = deals.get("/api/v1/pipelines/default").json()
    assert [r["key"] for r in pipeline["lost_reasons"]][-1] == "other"
    client = Client(deals)
    lost = client.must(client.create(name="Acme"), "lost", body)
    assert (lost["lost_reason"], lost["lost_reason_text"]) == expected


def test_a_pipeline_names_its_own_lost_reasons(deals):
    stages = [{k: v for k, v in s.items() if k != "terminal"}
              for s in deals.get("/api/v1/pipelines/default").json()["stages"]]
    resp = deals.post("/api/v1/pipelines", json={
        "name": "Renewals", "stages": stages,
        "lost_reasons": [{"key": "churned", "labels": {"en": "Churned", "zh-CN": "流失"}}]})
    assert resp.status_code == 201, resp.text
    assert [r["key"] for r in resp.json()["lost_reasons"]] == ["churned", "other"]
