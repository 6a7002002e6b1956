"""Roles and ownership on deals, against real FerretDB and RabbitMQ: a rep reaches only the
deals they own (by id, list, forecast, and for changes), a manager their team's, owners
are known people within the caller's reach, and a converted lead's deal takes its owner's
team from the people directory."""
import pytest

from tests.integration.deals.deals_support import lead_converted, publish, start_deals
from tests.support.tokens import bearer
from tests.support.wait import wait_for

ANN = bearer("rep", sub="ann", team="dach")
BOB = bearer("rep", sub="bob", team="dach")
MIA = bearer("manager", sub="mia", team="dach")
ALICE = bearer("manager", sub="alice", team="east")


@pytest.fixture
def deals(container_factory, make_config, api):
    config = make_config("deals")
    start_deals(container_factory, config)
    return {who: api(config, auth=headers) for who, headers in (
        ("ann", ANN), ("bob", BOB), ("mia", MIA), ("alice", ALICE), ("admin", bearer()),
        ("fay", bearer("finance", sub="fay")))}


def open_deal(client, name, **fields):
    resp = client.post("/api/v1/deals", json={"name": name, "amount": "100.00",
                                              "currency": "EUR",
                                              "expected_close": "2030-01-31", **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


@pytest.fixture
def owned(deals):
    return {"ann": [open_deal(deals["ann"], f"A{n}")["id"] for n in range(2)],
            "bob": [open_deal(deals["bob"], "B0")["id"]]}


def ids(resp):
    assert resp.status_code == 200, resp.text
    return {deal["id"] for deal in resp.json()["items"]}


def test_a_reps_deal_is_theirs_with_their_team(deals, owned):
    deal = deals["ann"].get(f"/api/v1/deals/{owned['ann'][0]}").json()
    assert (deal["owner_id"], deal["team"]) == ("ann", "dach")


def test_a_rep_reaches_only_their_own_deals(deals, owned):
    bobs = owned["bob"][0]
    assert deals["ann"].get(f"/api/v1/deals/{bobs}").status_code == 404
    assert ids(deals["ann"].get("/api/v1/deals")) == set(owned["ann"])
    assert ids(deals["ann"].get("/api/v1/deals", params={"owner_id": "bob"})) == set()
    moved = deals["ann"].post(f"/api/v1/deals/{bobs}/lost", json={"reason": "mine now"},
                              headers={"If-Match": '"1"'})
    assert moved.status_code == 404
    assert deals["bob"].get(f"/api/v1/deals/{bobs}").json()["status"] == "open"
    forecast = deals["ann"].get("/api/v1/forecast").json()
    assert {row["owner_id"] for row in forecast["rows"]} == {"ann"}
    assert deals["ann"].get("/api/v1/forecast", params={"owner_id": "bob"}).json()["rows"] == []


def test_a_manager_reaches_the_team_and_finance_reads_all(deals, owned):
    everyone = set(owned["ann"]) | set(owned["bob"])
    assert ids(deals["mia"].get("/api/v1/deals")) == everyone
    team = deals["mia"].get("/api/v1/forecast").json()["rows"]
    assert {row["owner_id"] for row in team} == {"ann", "bob"}
    assert ids(deals["alice"].get("/api/v1/deals")) == set()
    assert deals["alice"].get(f"/api/v1/deals/{owned['bob'][0]}").status_code == 404
    assert ids(deals["fay"].get("/api/v1/deals")) == everyone
    assert deals["fay"].post("/api/v1/deals", json={"name": "F"}).status_code == 403


@pytest.mark.parametrize("who, owner, status", [
    ("ann", "bob", 403),         # a rep opens deals they own
    ("mia", "carol", 403),       # a manager gives deals to the team only
    ("mia", "nobody-x", 400),    # owners are known people
    ("admin", "nobody-x", 400),
])
def test_owners_are_known_people_within_reach(deals, who, owner, status):
    resp = deals[who].post("/api/v1/deals", json={"name": "X", "owner_id": owner})
    assert resp.status_code == status, resp.text
    assert "owner_id" in resp.json().get("errors", {})


def test_a_manager_hands_a_deal_to_a_team_member(deals, owned):
    deal = owned["ann"][0]
    moved = deals["mia"].patch(f"/api/v1/deals/{deal}", json={"owner_id": "bob"},
                               headers={"If-Match": '"1"'})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["owner_id"], moved.json()["team"]) == ("bob", "dach")
    assert deals["ann"].get(f"/api/v1/deals/{deal}").status_code == 404
    assert deals["bob"].get(f"/api/v1/deals/{deal}").status_code == 200


def test_a_converted_leads_deal_takes_its_owners_team(deals, rabbit_config):
    publish(rabbit_config["AMQP_URI"], lead_converted("lead-ann-1", owner_id="ann"))

    def in_list():
        return ids(deals["mia"].get("/api/v1/deals", params={"lead_id": "lead-ann-1"}))

    assert wait_for(in_list, timeout=15)
    assert ids(deals["alice"].get("/api/v1/deals", params={"lead_id": "lead-ann-1"})) == set()
