"""Tickets over HTTP: open (dispatched or queued), read, list by cursor, moves (409 naming
the allowed ones), replies and notes, manual assignment, and queued tickets dispatched
when capacity frees."""
import pytest

from tests.integration.support.support_helpers import (
    AGENTS,
    move,
    open_ticket,
    start_support,
    support_config,
    ticket_body,
    wait_for,
)
from tests.support.amqp import Subscriber


def test_open_dispatch_reply_resolve(container_factory, make_config, api, rabbit_config):
    config = support_config(make_config, **AGENTS)
    sub = Subscriber(rabbit_config["AMQP_URI"], "support", "ticket.*")
    start_support(container_factory, config)
    http = api(config)

    ticket = open_ticket(http)
    assert (ticket["status"], ticket["assignee"], ticket["queued"]) == ("open", "ann", False), \
        (ticket, http.get("/api/v1/agents").json())
    assert ticket["sla"]["first_response"]["running"] is True
    got = http.get(f"/api/v1/tickets/{ticket['id']}")
    assert got.status_code == 200 and got.headers["ETag"] == '"3"'

    note = http.post(f"/api/v1/tickets/{ticket['id']}/replies",
                     json={"body": "checking the ledger", "public": False})
    assert note.status_code == 201 and note.json()["ticket"]["first_responded_at"] is None
    reply = http.post(f"/api/v1/tickets/{ticket['id']}/replies", json={"body": "Fixed?"})
    assert reply.json()["ticket"]["first_responded_at"] is not None
    assert move(http, ticket, "pending").json()["sla"]["resolution"]["running"] is False
    back = http.post(f"/api/v1/tickets/{ticket['id']}/replies",
                     json={"body": "Not yet", "author": "customer"}).json()["ticket"]
    assert back["status"] == "open" and back["sla"]["resolution"]["running"] is True
    replies = http.get(f"/api/v1/tickets/{ticket['id']}/replies").json()["items"]
    assert [(r["author"], r["public"]) for r in replies] == [
        ("agent", False), ("agent", True), ("customer", True)]

    bad = move(http, ticket, "new")
    assert bad.status_code == 409
    assert bad.headers["Content-Type"] == "application/problem+json"
    assert bad.json()["allowed"] == ["pending", "resolved"]
    resolved = move(http, ticket, "resolved")
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert http.get("/api/v1/agents").json()["items"][0] == {
        "id": "ann", "skills": ["billing"], "capacity": 2, "available": True, "load": 0}

    events = sub.drain(expect=8, timeout=10)
    assert [e["type"] for e in events] == [
        "ticket.opened", "ticket.assigned", "ticket.status_changed",
        "ticket.first_responded", "ticket.status_changed", "ticket.status_changed",
        "ticket.status_changed", "ticket.resolved"]
    assert [e["dealflowsequence"] for e in events] == list(range(1, 9))
    assert [(e["data"]["from"], e["data"]["to"]) for e in events
            if e["type"] == "ticket.status_changed"] == [
        ("new", "open"), ("open", "pending"), ("pending", "open"), ("open", "resolved")]
    sub.close()


def test_queued_tickets_are_dispatched_when_capacity_frees(container_factory, make_config,
                                                          api):
    config = support_config(make_config, **AGENTS)
    start_support(container_factory, config)
    http = api(config)
    first = open_ticket(http, category="hardware")
    second = open_ticket(http, category="hardware")  # bob (capacity 1) is full
    assert (first["assignee"], second["assignee"], second["queued"]) == ("bob", None, True)
    assert move(http, first, "resolved").status_code == 200
    now = http.get(f"/api/v1/tickets/{second['id']}").json()
    assert (now["assignee"], now["status"]) == ("bob", "open")
    # nobody can take a category without skilled agents; an agent added later does
    orphan = open_ticket(http, category="network")
    assert orphan["queued"] is True
    assert http.put("/api/v1/agents/cid", json={"skills": ["network"]}).status_code == 200
    assert wait_for(lambda: http.get(f"/api/v1/tickets/{orphan['id']}").json()["assignee"]
                    == "cid")


def test_leads_reassign_and_queue(container_factory, make_config, api):
    config = support_config(make_config, **AGENTS)
    start_support(container_factory, config)
    http = api(config)
    ticket = open_ticket(http)
    moved = http.post(f"/api/v1/tickets/{ticket['id']}/assign", json={"agent_id": "bob"})
    assert moved.status_code == 200 and moved.json()["assignee"] == "bob"
    loads = {a["id"]: a["load"] for a in http.get("/api/v1/agents").json()["items"]}
    assert loads == {"ann": 0, "bob": 1}
    queued = http.post(f"/api/v1/tickets/{ticket['id']}/assign", json={"agent_id": None})
    # back in the queue, and dispatched again at once to the least loaded: ann
    assert wait_for(lambda: http.get(f"/api/v1/tickets/{ticket['id']}").json()["assignee"]
                    == "ann"), queued.text
    nobody = http.post(f"/api/v1/tickets/{ticket['id']}/assign", json={"agent_id": "zed"})
    assert nobody.status_code == 404


def test_list_by_cursor_and_filters(container_factory, make_config, api):
    config = support_config(make_config, **AGENTS)
    start_support(container_factory, config)
    http = api(config)
    made = [open_ticket(http, priority="high" if i % 2 else "low") for i in range(5)]
    seen, cursor = [], None
    while True:
        page = http.get("/api/v1/tickets", params={"limit": 2, **(
            {"cursor": cursor} if cursor else {})}).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [t["id"] for t in made]
    high = http.get("/api/v1/tickets", params={"priority": "high"}).json()["items"]
    assert [t["id"] for t in high] == [made[1]["id"], made[3]["id"]]
    queued = http.get("/api/v1/tickets", params={"assignee": "ann"}).json()["items"]
    assert len(queued) == 2


@pytest.mark.parametrize("field, value, message", [
    ("channel", "fax", "Must be one of"),
    ("priority", "asap", "Must be one of"),
    ("subject", " ", "Must not be blank."),
    ("account", None, "Field may not be null."),
    ("category", "Bad Category", "lower-case"),
    ("contact", {"email": "nope"}, "email"),
])
def test_bad_tickets_are_refused_and_write_nothing(container_factory, make_config, api,
                                                   mongo_db, field, value, message):
    config = support_config(make_config, **AGENTS)
    start_support(container_factory, config)
    http = api(config)
    resp = http.post("/api/v1/tickets", json=ticket_body(**{field: value}))
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert message.lower() in str(resp.json()["errors"][field]).lower()
    assert mongo_db.tickets.count_documents({}) == 0


@pytest.mark.parametrize("agent_id", [None, "bob"], ids=["unassign", "assign"])
def test_a_closed_ticket_keeps_its_assignment(container_factory, make_config, api, mongo_db,
                                              agent_id):
    config = support_config(make_config, **AGENTS)
    start_support(container_factory, config)
    http = api(config)
    ticket = open_ticket(http)
    for status in ("resolved", "closed"):
        assert move(http, ticket, status).status_code == 200
    kept = ("version", "assignee", "queued_at", "updated_at")
    before = mongo_db.tickets.find_one({"_id": ticket["id"]})
    resp = http.post(f"/api/v1/tickets/{ticket['id']}/assign", json={"agent_id": agent_id})
    assert resp.status_code == 409, resp.text
    assert resp.headers["Content-Type"] == "application/problem+json"
    after = mongo_db.tickets.find_one({"_id": ticket["id"]})
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}
    assert {a["_id"]: a["load"] for a in mongo_db.agents.find()} == {"ann": 0, "bob": 0}


@pytest.mark.parametrize("length, status", [(100, 200), (101, 400)])
def test_agent_ids_are_as_long_as_the_ticket_routes_take(container_factory, make_config, api,
                                                         mongo_db, length, status):
    config = support_config(make_config, **AGENTS)
    start_support(container_factory, config)
    http = api(config)
    agent_id = "a" * length
    # the ticket routes' own answer for this id
    assert http.get("/api/v1/tickets", params={"assignee": agent_id}).status_code == status
    resp = http.put(f"/api/v1/agents/{agent_id}", json={"skills": ["billing"]})
    assert resp.status_code == status, resp.text
    if status == 400:
        assert resp.headers["Content-Type"] == "application/problem+json"
        assert resp.json()["errors"] == {"id": ["Length must be between 1 and 100."]}
    assert mongo_db.agents.count_documents({"_id": agent_id}) == (status == 200)
