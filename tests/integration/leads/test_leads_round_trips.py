"""What a lead's creation and conversion cost the database, counted (a pymongo command
listener), not timed: what the rules need (dedup by the unique keys, the known customer's
contact, the assignment's cursor and cap claim, the insert carrying its events, the audit
trail's entry, one outbox clear) and no second read of the same document."""
import pytest

from tests.support.roundtrips import COMMANDS
from tests.support.wait import wait_for

ASSIGNMENT = {"fallback_queue": "inbox", "default_cap": 50, "caps": {},
              "territories": [{"name": "dach", "countries": ["DE"], "team": "dach"}],
              "teams": {"dach": ["ann", "bob"]}}
QUIET = {"OUTBOX": {"sweep_interval_seconds": 3600},
         "FOLLOWUP": {"check_interval_seconds": 3600}, "SLA": {"check_interval_seconds": 3600,
                                                              "response_minutes": 0},
         "CAPTURE": {"sweep_interval_seconds": 3600},
         "ASSIGNMENT": {**ASSIGNMENT, "recount_interval_seconds": 3600}}


@pytest.fixture
def leads(container_factory, make_config, api):
    from leads.service import LeadsService

    config = make_config("leads", **QUIET)
    container_factory(LeadsService, config).start()
    return api(config)


def settled(mongo_db, coll, _id):
    doc = mongo_db[coll].find_one({"_id": _id}, {"outbox": 1, "outbox_since": 1})
    # (the clear's last step unsets outbox_since: the relay is done with it)
    return doc is not None and doc.get("outbox") == [] and "outbox_since" not in doc


def create(leads, n):
    resp = leads.post("/api/v1/leads", json={"name": f"Ada {n}", "email": f"ada{n}@ex.org",
                                             "country": "DE", "source": "web_form"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def counted(sent):
    out = {}
    for name, coll, _ in sent:
        if name != "createIndexes":  # the service's start-up, still going on
            out[(name, coll)] = out.get((name, coll), 0) + 1
    return out


def test_a_lead_creation_sends_what_its_rules_need(leads, mongo_db):
    warm = create(leads, 0)
    assert wait_for(lambda: settled(mongo_db, "leads", warm))
    COMMANDS.watch(mongo_db.name)
    lead_id = create(leads, 1)
    assert wait_for(lambda: settled(mongo_db, "leads", lead_id))
    sent = COMMANDS.take()
    assert counted(sent) == {
        ("find", "contacts"): 1,            # a known customer's contact (by e-mail)
        ("findAndModify", "cursors"): 1,    # the team's round-robin position
        ("findAndModify", "reps"): 1,       # the rep's slot under the cap
        ("insert", "leads"): 1,             # the lead with lead.created, lead.assigned
        ("insert", "audit"): 1,             # kit.audit
        ("update", "leads"): 1,             # the outbox clear (no relay read)
    }, sent


def test_a_conversion_reads_the_lead_once(leads, mongo_db):
    lead_id = create(leads, 2)
    for status in ("contacted", "qualified"):
        assert leads.post(f"/api/v1/leads/{lead_id}/status",
                          json={"status": status}).status_code == 200
    assert wait_for(lambda: settled(mongo_db, "leads", lead_id))
    COMMANDS.watch(mongo_db.name)
    resp = leads.post(f"/api/v1/leads/{lead_id}/convert",
                      json={"amount": "100.00", "currency": "EUR"})
    assert resp.status_code == 200, resp.text
    assert wait_for(lambda: settled(mongo_db, "leads", lead_id))
    sent = counted(COMMANDS.take())
    assert sent[("find", "leads")] == 1, sent
    assert sent[("findAndModify", "leads")] == 1, sent
    assert sent[("update", "leads")] == 1, sent  # the outbox clear, no relay read
