"""Auto-dispatch under concurrency: tickets arriving at once at two instances never push an
agent past their capacity; the rest wait in the queue and are dispatched as capacity
frees. A closed ticket stored as queued (old data) never holds the queue up."""
import datetime as dt

import eventlet
import pytest

from tests.integration.support.support_helpers import (
    move,
    open_ticket,
    start_support,
    support_config,
    ticket_body,
    wait_for,
)

ROSTER = {"SUPPORT": {"agents": [
    {"id": "ann", "skills": ["billing"], "capacity": 2},
    {"id": "bob", "skills": ["billing"], "capacity": 1},
], "dispatch_interval_seconds": 0.2}}


@pytest.mark.parametrize("tickets", [12])
def test_concurrent_tickets_never_pass_an_agents_cap(container_factory, make_config, api,
                                                     mongo_db, tickets):
    first, second = support_config(make_config, **ROSTER), support_config(make_config, **ROSTER)
    start_support(container_factory, first)
    start_support(container_factory, second)
    clients = [api(first), api(second)]
    clients[0].get("/api/v1/agents")  # the roster is seeded

    # watch the loads while the tickets arrive: no moment may pass a cap
    seen = {"ann": 0, "bob": 0}
    watching = True

    def watch():
        while watching:
            for agent in mongo_db.agents.find():
                seen[agent["_id"]] = max(seen[agent["_id"]], agent["load"],
                                         len(agent["tickets"]))
            eventlet.sleep(0.005)

    watcher = eventlet.spawn(watch)
    pool = eventlet.GreenPool(tickets)
    responses = list(pool.imap(
        lambda i: clients[i % 2].post("/api/v1/tickets", json=ticket_body(subject=f"T{i}")),
        range(tickets)))
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
    # (a ticket queued in its response may be dispatched by a timer right after)
    assert wait_for(lambda: mongo_db.tickets.count_documents({"assignee": {"$ne": None}}) == 3)
    watching = False
    watcher.wait()
    assert seen == {"ann": 2, "bob": 1}

    agents = {a["_id"]: a for a in mongo_db.agents.find()}
    assert (agents["ann"]["load"], agents["bob"]["load"]) == (2, 1)
    holding = {t["_id"]: t["assignee"] for t in mongo_db.tickets.find({"assignee": {"$ne": None}})}
    assert sorted(holding.values()) == ["ann", "ann", "bob"]
    assert {tid: agent for agent in ("ann", "bob") for tid in agents[agent]["tickets"]} == holding
    assert mongo_db.tickets.count_documents({"queued_at": {"$ne": None}}) == tickets - 3

    # resolving frees a place: exactly one queued ticket takes it, the oldest
    queued = [t["_id"] for t in mongo_db.tickets.find({"queued_at": {"$ne": None}}).sort(
        [("queued_at", 1), ("_id", 1)])]
    done = next(tid for tid, agent in holding.items() if agent == "bob")
    assert move(clients[0], {"id": done}, "resolved").status_code == 200
    assert wait_for(lambda: mongo_db.tickets.count_documents({"assignee": "bob",
                                                              "status": "open"}) == 1)
    taken = mongo_db.tickets.find_one({"assignee": "bob", "status": "open"})
    assert taken["_id"] == queued[0]
    assert mongo_db.agents.find_one({"_id": "bob"})["load"] == 1


def test_a_claim_lost_between_its_two_writes_is_completed(container_factory, make_config,
                                                          api, mongo_db):
    """A crash after the agent's load took the ticket and before the ticket named the
    agent: the next dispatch finds the claim and completes it (no load leaks)."""
    config = support_config(make_config, **{"SUPPORT": {**ROSTER["SUPPORT"],
                                                   "dispatch_interval_seconds": 3600}})
    start_support(container_factory, config)
    http = api(config)
    http.get("/api/v1/agents")
    mongo_db.agents.update_one({"_id": "ann"}, {"$set": {"available": False}})
    mongo_db.agents.update_one({"_id": "bob"}, {"$set": {"available": False}})
    ticket = open_ticket(http)
    assert ticket["queued"]
    # the claim of a crashed dispatch
    mongo_db.agents.update_one({"_id": "bob"}, {"$inc": {"load": 1},
                                                "$push": {"tickets": ticket["id"]}})
    assert http.put("/api/v1/agents/ann", json={"available": True}).status_code == 200
    now = http.get(f"/api/v1/tickets/{ticket['id']}").json()
    assert now["assignee"] == "bob"
    loads = {a["_id"]: a["load"] for a in mongo_db.agents.find()}
    assert loads == {"ann": 0, "bob": 1}


def _closed_ticket_first_in_the_queue(http, mongo_db):
    """With every agent away: (a closed ticket stored as queued, first in the queue, as
    un-assigning a closed ticket wrote it before that was refused; a queued ticket)."""
    http.get("/api/v1/agents")  # the roster is seeded
    mongo_db.agents.update_many({}, {"$set": {"available": False}})
    closed, waiting = open_ticket(http), open_ticket(http)
    for status in ("resolved", "closed"):
        assert move(http, closed, status).status_code == 200
    mongo_db.tickets.update_one({"_id": closed["id"]}, {"$set": {
        "assignee": None, "queued_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}})
    assert waiting["queued"]
    return mongo_db.tickets.find_one({"_id": closed["id"]}), waiting


def test_the_timer_dispatches_past_a_closed_ticket_stored_as_queued(container_factory,
                                                                    make_config, api,
                                                                    mongo_db):
    config = support_config(make_config, **ROSTER)
    start_support(container_factory, config)
    http = api(config)
    closed, waiting = _closed_ticket_first_in_the_queue(http, mongo_db)
    mongo_db.agents.update_one({"_id": "ann"}, {"$set": {"available": True}})
    assert wait_for(lambda: http.get(f"/api/v1/tickets/{waiting['id']}").json()["assignee"]
                    == "ann")
    assert mongo_db.tickets.find_one({"_id": closed["_id"]})["version"] == closed["version"]
    assert mongo_db.agents.find_one({"_id": "ann"})["tickets"] == [waiting["id"]]


def test_an_agent_update_is_saved_and_answered_past_a_closed_ticket(container_factory,
                                                                    make_config, api,
                                                                    mongo_db):
    config = support_config(make_config, **{"SUPPORT": {**ROSTER["SUPPORT"],
                                                   "dispatch_interval_seconds": 3600}})
    start_support(container_factory, config)
    http = api(config)
    closed, waiting = _closed_ticket_first_in_the_queue(http, mongo_db)
    resp = http.put("/api/v1/agents/ann", json={"available": True, "capacity": 11})
    assert resp.status_code == 200, resp.text
    assert (resp.json()["capacity"], resp.json()["load"]) == (11, 1)
    assert http.get(f"/api/v1/tickets/{waiting['id']}").json()["assignee"] == "ann"
    assert mongo_db.tickets.find_one({"_id": closed["_id"]})["version"] == closed["version"]
