"""deal.won opens one delivery project per deal (however often it arrives, at however many
instances); steps complete over HTTP, the acceptance emits delivery.accepted, and overdue
projects are listed. Completing a step takes no fields: a body that is not an empty JSON
object is refused."""
import datetime as dt
from decimal import Decimal

import pytest

from kit.events import new_event
from support import delivery as V
from tests.integration.deals.deals_support import publish, queue_bound
from tests.integration.support.support_helpers import (
    start_support,
    store_of,
    support_config,
    wait_for,
)
from tests.support.amqp import Subscriber, distinct

WON = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def deal_won(deal_id, won_at=WON, pipeline_id="default"):
    return new_event("deal.won", deal_id, {
        "deal_id": deal_id, "pipeline_id": pipeline_id, "from_stage": "contract_payment",
        "amount": Decimal("1000.00"), "currency": "CNY", "owner_id": "rep-1",
        "account": "Acme", "created_at": won_at - dt.timedelta(days=30), "won_at": won_at}, 9)


def test_deal_won_opens_one_project_even_when_redelivered(container_factory, make_config,
                                                          api, rabbit_config, mongo_db):
    first, second = support_config(make_config), support_config(make_config)
    sub = Subscriber(rabbit_config["AMQP_URI"], "support", "delivery.*")
    start_support(container_factory, first)
    start_support(container_factory, second)
    http = api(first)
    assert wait_for(lambda: queue_bound(rabbit_config["AMQP_URI"],
                                        "evt-deals-deal.won--support.handle_deals_deal_won"))
    event = deal_won("d-1")
    publish(rabbit_config["AMQP_URI"], event, event, event, deal_won("d-2"))
    assert wait_for(lambda: mongo_db.deliveries.count_documents({}) == 2)
    publish(rabbit_config["AMQP_URI"], event)
    project = http.get("/api/v1/deliveries/dlv-d-1").json()
    assert [s["key"] for s in project["steps"]] == ["kickoff", "installation", "training",
                                                    "acceptance"]
    assert (project["owner_id"], project["status"], project["won_at"]) == \
        ("rep-1", "open", "2026-03-02T10:00:00.000Z")
    assert project["steps"][0]["due_at"] == "2026-03-05T10:00:00.000Z"
    # delivery is at least once (a relay retried after a broker error republishes): one
    # project per deal means one distinct delivery.opened event per deal
    opened = sub.drain(expect=2, timeout=10, distinct=True) + sub.drain(timeout=1)
    opened = distinct(opened)
    assert sorted(e["subject"] for e in opened) == ["dlv-d-1", "dlv-d-2"]
    assert {e["type"] for e in opened} == {"delivery.opened"}
    assert mongo_db.deliveries.count_documents({}) == 2
    sub.close()


def test_steps_acceptance_and_overdue(container_factory, make_config, api, rabbit_config,
                                      mongo_db):
    config = support_config(make_config)
    sub = Subscriber(rabbit_config["AMQP_URI"], "support", "delivery.accepted")
    start_support(container_factory, config)
    http = api(config)
    assert wait_for(lambda: queue_bound(rabbit_config["AMQP_URI"],
                                        "evt-deals-deal.won--support.handle_deals_deal_won"))
    recent = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    publish(rabbit_config["AMQP_URI"], deal_won("late"), deal_won("fresh", won_at=recent))
    assert wait_for(lambda: mongo_db.deliveries.count_documents({}) == 2)

    overdue = http.get("/api/v1/deliveries", params={"overdue": "true"}).json()["items"]
    assert [p["id"] for p in overdue] == ["dlv-late"]
    assert [s["overdue"] for s in overdue[0]["steps"]] == [True, True, True, True]
    assert http.get("/api/v1/deliveries/dlv-fresh").json()["overdue"] is False

    early = http.post("/api/v1/deliveries/dlv-late/steps/acceptance/complete")
    assert early.status_code == 409, early.text
    assert early.json()["open_steps"] == ["kickoff", "installation", "training"]
    for step in ("kickoff", "installation", "training", "acceptance"):
        resp = http.post(f"/api/v1/deliveries/dlv-late/steps/{step}/complete")
        assert resp.status_code == 200, resp.text
    done = resp.json()
    assert done["status"] == "accepted" and done["overdue"] is False
    assert http.post("/api/v1/deliveries/dlv-late/steps/nope/complete").status_code == 404
    assert http.get("/api/v1/deliveries", params={"overdue": "true"}).json()["items"] == []
    [accepted] = sub.drain(expect=1, timeout=10)
    assert accepted["data"]["deal_id"] == "late"
    by_deal = http.get("/api/v1/deliveries", params={"deal_id": "fresh"}).json()["items"]
    assert [p["id"] for p in by_deal] == ["dlv-fresh"]
    sub.close()


def _project(container):
    """A delivery project stored as deal.won would, without the broker."""
    project, events = V.new_project(
        {"deal_id": "d-1", "pipeline_id": "default", "won_at": WON},
        {"default": [{"key": "kickoff", "due_days": 3}, {"key": "acceptance"}]}, WON)
    store_of(container).insert_delivery(project, events)
    return project["_id"]


# errors None: not JSON at all, which the problem's detail says
@pytest.mark.parametrize("body, errors", [
    ('{"not valid json', None),
    ('{"done_at": "2020-01-01T00:00:00Z"}', {"done_at": ["Unknown field."]}),
    ('{"foo": 1}', {"foo": ["Unknown field."]}),
    ("[]", {"_schema": ["The body must be a JSON object."]}),
], ids=["not-json", "done_at", "unknown", "not-object"])
def test_a_body_the_step_does_not_take_is_400_and_writes_nothing(
        container_factory, make_config, api, mongo_db, body, errors):
    config = support_config(make_config)
    container = start_support(container_factory, config)
    http = api(config)
    project_id = _project(container)
    before = mongo_db.deliveries.find_one({"_id": project_id})
    resp = http.post(f"/api/v1/deliveries/{project_id}/steps/kickoff/complete", data=body,
                     headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert resp.headers["Content-Type"] == "application/problem+json"
    if errors is None:
        assert resp.json()["detail"].startswith("The body is not valid JSON")
    else:
        assert resp.json()["errors"] == errors
    after = mongo_db.deliveries.find_one({"_id": project_id})
    assert (after["version"], after["steps"]) == (before["version"], before["steps"])


@pytest.mark.parametrize("body, content_type", [
    ("", None), ("", "application/json"), ("{}", "application/json"),
], ids=["none", "empty", "empty-object"])
def test_an_empty_body_completes_the_step(container_factory, make_config, api, body,
                                          content_type):
    config = support_config(make_config)
    container = start_support(container_factory, config)
    http = api(config)
    project_id = _project(container)
    resp = http.post(f"/api/v1/deliveries/{project_id}/steps/kickoff/complete", data=body,
                     headers={"Content-Type": content_type} if content_type else {})
    assert resp.status_code == 200, resp.text
    assert resp.json()["steps"][0]["done_at"] is not None
