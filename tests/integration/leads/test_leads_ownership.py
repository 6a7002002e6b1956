"""Roles and ownership on leads, against real FerretDB and RabbitMQ: a rep reaches only the
leads they own (by id, by list and filter, through paging), a manager their team's, the
actor of a write is the token's subject, and admins read the audit trail."""
import pytest

from tests.support.amqp import Subscriber
from tests.support.tokens import bearer
from tests.support.wait import wait_for

ASSIGNMENT = {
    "fallback_queue": "inbox", "default_cap": 50, "caps": {},
    "territories": [{"name": "dach", "countries": ["DE", "AT", "CH"], "team": "dach"}],
    "teams": {"dach": ["ann", "bob"]},
}
ANN = bearer("rep", sub="ann", team="dach")
BOB = bearer("rep", sub="bob", team="dach")
MIA = bearer("manager", sub="mia", team="dach")
ALICE = bearer("manager", sub="alice", team="east")
WEB = bearer("integration", sub="web-forms")


@pytest.fixture
def config(make_config):
    return make_config("leads", ASSIGNMENT=ASSIGNMENT, SLA={"response_minutes": 0},
                       AUTH={"trusted_proxies": []})


@pytest.fixture
def leads(container_factory, config, api):
    from leads.service import LeadsService

    container_factory(LeadsService, config).start()
    return {who: api(config, auth=headers) for who, headers in (
        ("ann", ANN), ("bob", BOB), ("mia", MIA), ("alice", ALICE), ("web", WEB),
        ("admin", bearer()), ("nobody", {}))}


def capture(client, n, **fields):
    resp = client.post("/api/v1/leads", json={"name": f"Lead {n}", "email": f"l{n}@x.com",
                                              "country": "AT", **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


@pytest.fixture
def owned(leads):
    """Three leads of ann's and two of bob's, each captured by its rep."""
    return {"ann": [capture(leads["ann"], n) for n in range(3)],
            "bob": [capture(leads["bob"], n) for n in range(3, 5)]}


def stored(mongo_db, lead_id):
    """The stored lead without its outbox (and the audit entry its creation carried),
    which the relay empties meanwhile."""
    doc = mongo_db.leads.find_one({"_id": lead_id})
    return {k: v for k, v in doc.items() if k not in ("outbox", "outbox_since",
                                                      "outbox_audit")}


def ids(page):
    return {lead["id"] for lead in page.json()["items"]}


def all_pages(client, **params):
    seen, cursor = [], None
    while True:
        page = client.get("/api/v1/leads", params={**params, "limit": 1,
                                                   **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        seen += [lead["id"] for lead in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return seen


def test_a_reps_own_capture_is_theirs(leads, owned):
    lead = leads["ann"].get(f"/api/v1/leads/{owned['ann'][0]}").json()
    assert (lead["owner_id"], lead["team"]) == ("ann", "dach")


def test_a_rep_cannot_read_another_reps_lead_by_id(leads, owned):
    for path in ("", "/timeline", "/tasks"):
        resp = leads["ann"].get(f"/api/v1/leads/{owned['bob'][0]}{path}")
        assert resp.status_code == 404, (path, resp.text)
        assert resp.headers["Content-Type"].startswith("application/problem+json")


def test_a_rep_lists_and_pages_only_their_own(leads, owned):
    assert ids(leads["ann"].get("/api/v1/leads")) == set(owned["ann"])
    assert sorted(all_pages(leads["ann"])) == sorted(owned["ann"])
    assert ids(leads["ann"].get("/api/v1/leads", params={"owner_id": "bob"})) == set()
    assert ids(leads["ann"].get("/api/v1/leads", params={"status": "new"})) == set(owned["ann"])


@pytest.mark.parametrize("path, body", [
    ("/status", {"status": "contacted"}),
    ("/activities", {"type": "call"}),
    ("/tasks", {"due_at": "2030-01-01T00:00:00Z"}),
    ("/convert", {"amount": "10.00", "currency": "EUR"}),
])
def test_a_rep_cannot_change_another_reps_lead(leads, owned, mongo_db, path, body):
    before = stored(mongo_db, owned["bob"][0])
    resp = leads["ann"].post(f"/api/v1/leads/{owned['bob'][0]}{path}", json=body)
    assert resp.status_code == 404, resp.text
    assert stored(mongo_db, owned["bob"][0]) == before
    assert mongo_db.tasks.count_documents({}) == 0


@pytest.mark.parametrize("on_duplicate", ["reject", "merge"])
def test_a_duplicate_of_another_reps_lead_names_no_id_and_merges_nothing(
        leads, owned, mongo_db, on_duplicate):
    before = stored(mongo_db, owned["ann"][0])
    resp = leads["bob"].post("/api/v1/leads", params={"on_duplicate": on_duplicate},
                             json={"name": "Again", "email": "l0@x.com", "company": "Co"})
    assert resp.status_code == 409, resp.text
    assert "existing_id" not in resp.json()
    assert stored(mongo_db, owned["ann"][0]) == before
    mine = leads["ann"].post("/api/v1/leads", json={"name": "Again", "email": "l0@x.com"})
    assert mine.status_code == 409 and mine.json()["existing_id"] == owned["ann"][0]


def test_a_manager_reaches_their_team_and_no_other(leads, owned):
    everyone = set(owned["ann"]) | set(owned["bob"])
    assert ids(leads["mia"].get("/api/v1/leads", params={"limit": 50})) == everyone
    assert sorted(all_pages(leads["mia"])) == sorted(everyone)
    assert leads["mia"].get(f"/api/v1/leads/{owned['bob'][0]}").status_code == 200
    assert ids(leads["alice"].get("/api/v1/leads")) == set()
    assert leads["alice"].get(f"/api/v1/leads/{owned['bob'][0]}").status_code == 404


def test_a_manager_assigns_only_to_known_people_of_their_team(leads, owned):
    lead = owned["bob"][0]
    unknown = leads["mia"].post(f"/api/v1/leads/{lead}/assign", json={"owner_id": "nobody-x"})
    assert unknown.status_code == 400 and "owner_id" in unknown.json()["errors"]
    elsewhere = leads["mia"].post(f"/api/v1/leads/{lead}/assign", json={"owner_id": "carol"})
    assert elsewhere.status_code == 403
    moved = leads["mia"].post(f"/api/v1/leads/{lead}/assign", json={"owner_id": "ann"})
    assert moved.status_code == 200 and moved.json()["owner_id"] == "ann"
    assert leads["ann"].get(f"/api/v1/leads/{lead}").status_code == 200
    assert leads["bob"].get(f"/api/v1/leads/{lead}").status_code == 404
    assert leads["ann"].post(f"/api/v1/leads/{lead}/assign",
                             json={"owner_id": "bob"}).status_code == 403


def test_integrations_read_and_create_but_do_not_work_leads(leads, owned):
    assert len(ids(leads["web"].get("/api/v1/leads", params={"limit": 50}))) == 5
    lead = capture(leads["web"], 9, country="DE")
    assert leads["web"].post(f"/api/v1/leads/{lead}/status",
                             json={"status": "contacted"}).status_code == 403


def test_the_actor_is_the_token_subject_and_a_body_cannot_name_one(leads, owned,
                                                                   rabbit_config):
    events = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.contacted")
    try:
        lead = owned["ann"][0]
        forged = leads["ann"].post(f"/api/v1/leads/{lead}/activities",
                                   json={"type": "call", "actor": "bob"})
        assert forged.status_code == 400 and "actor" in forged.json()["errors"]
        call = leads["ann"].post(f"/api/v1/leads/{lead}/activities", json={"type": "call"})
        assert call.status_code == 201 and call.json()["activity"]["actor"] == "ann"
        [contacted] = events.drain(expect=1, timeout=10)
        assert contacted["actor"] == "ann"
    finally:
        events.close()


def test_admins_read_the_audit_trail_of_writes_by_cursor(leads, owned):
    assert leads["ann"].get("/api/v1/audit").status_code == 403
    assert leads["nobody"].get("/api/v1/audit").status_code == 401
    # a client's own X-Forwarded-For is not believed (no trusted proxies configured)
    leads["ann"].post(f"/api/v1/leads/{owned['ann'][0]}/status", json={"status": "contacted"},
                      headers={"X-Forwarded-For": "203.0.113.9"})

    def entries():
        seen, cursor = [], None
        while True:
            page = leads["admin"].get("/api/v1/audit", params={
                "limit": 2, **({"cursor": cursor} if cursor else {})})
            assert page.status_code == 200, page.text
            seen += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if not cursor:
                return seen

    trail = wait_for(lambda: (e := entries()) and len(e) >= 6 and e, timeout=10)
    assert trail, "the audit trail is incomplete"
    assert [e["actor"] for e in trail].count("ann") == 4
    newest = trail[0]
    assert (newest["action"], newest["target"], newest["status"]) == (
        "change_status", owned["ann"][0], 200)
    assert newest["address"] == "127.0.0.1"
    assert len({e["id"] for e in trail}) == len(trail)
