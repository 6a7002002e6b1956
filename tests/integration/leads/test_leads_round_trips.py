"""What a lead's creation and conversion cost the database, counted (a pymongo command
listener), not timed: what the rules need (dedup by the unique keys, the known customer's
contact, the assignment's cap claim, the insert carrying its events and the request's
audit entry) and no second read of the same document. The relay then inserts the audit
entries and clears the outboxes of everything it publishes in one command each."""
import pytest

from kit.amqp import ConfirmingPublisher
from kit.outbox import OutboxRelay
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
        ("findAndModify", "reps"): 1,       # the rep's slot under the cap
        ("insert", "leads"): 1,             # the lead with its events and audit entry
        ("insert", "audit"): 1,             # the relay: the audit entry the lead carried
        ("update", "leads"): 1,             # the outbox clear (no relay read)
    }, sent
    # the request answered after three; the relay's two follow
    assert [(name, coll) for name, coll, _ in sent if name != "createIndexes"][2:] == [
        ("insert", "leads"), ("insert", "audit"), ("update", "leads")], sent


@pytest.fixture
def leads_without_relay(container_factory, make_config, api):
    from leads.service import LeadsService

    config = make_config("leads", **{**QUIET, "OUTBOX": {"relay_enabled": False}})
    container = container_factory(LeadsService, config)
    container.start()
    migrations = next(d for d in container.dependencies if d.attr_name == "migrations")
    assert wait_for(lambda: migrations.finished)  # start-up work, not a creation's
    return api(config)


def test_ten_creations_cost_three_commands_each_and_one_relay_pass(
        leads_without_relay, mongo_db, rabbit_config):
    warm = create(leads_without_relay, 100)
    COMMANDS.watch(mongo_db.name)
    ids = [create(leads_without_relay, n) for n in range(101, 111)]
    assert counted(COMMANDS.take()) == {("find", "contacts"): 10,
                                        ("findAndModify", "reps"): 10,
                                        ("insert", "leads"): 10}
    assert mongo_db.audit.count_documents({}) == 0, "the entries ride in the leads"

    publisher = ConfirmingPublisher(rabbit_config["AMQP_URI"])
    try:
        COMMANDS.watch(mongo_db.name)
        sent = OutboxRelay(mongo_db, ["leads"], publisher).publish_entities(
            [("leads", i) for i in [warm, *ids]])
        assert sent == 22  # lead.created and lead.assigned each
        assert counted(COMMANDS.take()) == {("find", "leads"): 1, ("insert", "audit"): 1,
                                            ("update", "leads"): 1}
    finally:
        publisher.close()
    assert [(e["action"], e["status"], e["path"]) for e in mongo_db.audit.find({})] == [
        ("create_lead", 201, "/api/v1/leads")] * 11
    assert mongo_db.leads.count_documents({"outbox_audit": {"$exists": True}}) == 0


def test_a_conversion_reads_each_record_once(leads, mongo_db):
    lead_id = create(leads, 2)
    for status in ("contacted", "qualified"):
        assert leads.post(f"/api/v1/leads/{lead_id}/status",
                          json={"status": status}).status_code == 200
    assert wait_for(lambda: settled(mongo_db, "leads", lead_id))
    COMMANDS.watch(mongo_db.name)
    resp = leads.post(f"/api/v1/leads/{lead_id}/convert",
                      json={"amount": "100.00", "currency": "EUR"})
    assert resp.status_code == 200, resp.text
    [contact_id] = [c["_id"] for c in mongo_db.contacts.find({})]
    [account_id] = [a["_id"] for a in mongo_db.accounts.find({})]
    assert wait_for(lambda: all(settled(mongo_db, coll, _id) for coll, _id in (
        ("leads", lead_id), ("contacts", contact_id), ("accounts", account_id))))
    assert wait_for(lambda: mongo_db.audit.find_one({"action": "convert"}))
    sent = COMMANDS.take()
    # the account's note (its timeline's entry) may race the relay's first pass over the
    # new account: a later pass then unmarks it, or the clear falls back to trimming the
    # outbox. Those are the relay's, after the request; the request's own are counted below
    for extra in [c for c in sent if c[:2] == ("update", "accounts")][1:]:
        sent.remove(extra)
    assert counted(sent) == {
        ("find", "leads"): 1,               # the lead, refused or converted from this read
        ("find", "contacts"): 1,            # its person: by e-mail or phone, or its own id
        ("find", "accounts"): 1,            # its company: by name or e-mail domain
        ("insert", "accounts"): 1,          # a new account (account.created) ...
        ("insert", "contacts"): 1,          # ... and contact (contact.created), not re-read
        ("findAndModify", "accounts"): 1,   # the account's timeline notes the conversion
        ("findAndModify", "leads"): 1,      # lead.converted and the request's audit entry
        ("update", "reps"): 1,              # the owner's slot, free again
        ("insert", "audit"): 1,             # the relay: the entry the lead carried
        ("update", "accounts"): 1,          # the relay's outbox clears, one per collection
        ("update", "contacts"): 1,
        ("update", "leads"): 1,
    }, sent


def test_an_edit_of_a_lead_with_1000_activities_sends_what_a_new_lead_s_does(
        container_factory, make_config, api, mongo_db):
    """The lead keeps its recent activities only (kit.buckets): an edit reads and writes
    the same commands of about the same size however long the lead's past, and what the
    database answers (the lead read, the write's answer) is about the same size too."""
    import datetime as dt

    from kit.changes import Change
    from leads import domain
    from leads.service import LeadsService
    from leads.store import ACTIVITIES

    config = make_config("leads", **QUIET, ACTIVITIES={"recent": 10})
    container = container_factory(LeadsService, config)
    container.start()
    store = next(d for d in container.dependencies if d.attr_name == "store").store
    http = api(config)
    old, new = create(http, 10), create(http, 11)
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for first in range(1, 1000, 111):  # 999 notes in 9 writes, and one e-mail: 1,000
        store.change(old, lambda lead, first=first: domain.log(Change(), lead, *[
            {"id": f"a{n}", "type": "note", "at": at, "actor": "ann", "outcome": None,
             "summary": f"Note {n:04d} about the customer", "duration_minutes": None,
             "recorded_at": at} for n in range(first, first + 111)]))
    for lead_id in (old, new):
        assert http.post(f"/api/v1/leads/{lead_id}/activities",
                         json={"type": "email", "summary": "Sent the offer"}).status_code == 201
    assert wait_for(lambda: settled(mongo_db, "leads", old) and settled(mongo_db, "leads", new)
                    and mongo_db.leads.find_one({"_id": old})["activities_flushed"] > 990,
                    timeout=30)
    stored = mongo_db.leads.find_one({"_id": old})
    assert stored["activities_count"] == 1000 and len(stored["activities"]) < 2 * 10
    # an edit that copies no entries into buckets on either lead (one in `recent` does)
    assert stored["activities_count"] + 1 - stored["activities_flushed"] < 10
    assert mongo_db[ACTIVITIES].count_documents({"entity": old}) == 10

    # A relay pass still finishing the activity writes above can land in a watched window
    # now and then (one more outbox update, whatever the lead's history): the pair is
    # measured again then, up to three times. Growth with history shows every time.
    for attempt in range(3):
        sent, received = {}, {}
        for lead_id in (new, old):
            version = http.get(f"/api/v1/leads/{lead_id}").json()["version"]
            COMMANDS.watch(mongo_db.name)
            resp = http.patch(f"/api/v1/leads/{lead_id}", json={"company": f"Engines {attempt}"},
                              headers={"If-Match": f'"{version}"'})
            assert resp.status_code == 200, resp.text
            # settled in the database, and the relay has read the reply of its last write
            assert wait_for(lambda lead_id=lead_id: settled(mongo_db, "leads", lead_id)
                            and COMMANDS.answered())
            sent[lead_id], received[lead_id] = (sorted(c) for c in COMMANDS.take(replies=True))
        if [(n, c) for n, c, _ in sent[old]] == [(n, c) for n, c, _ in sent[new]]:
            break
    assert [(n, c) for n, c, _ in sent[old]] == [(n, c) for n, c, _ in sent[new]], sent
    # the same sizes but for the few bytes that numbers of another width take
    assert all(o[2] <= n[2] + 16 for o, n in zip(sent[old], sent[new], strict=True)), sent
    # the answers: the old lead's 10 recent entries (~1.6 kB) against the new one's 1-2,
    # not its 1,000 (~160 kB)
    assert [(n, c) for n, c, _ in received[old]] == [(n, c) for n, c, _ in received[new]]
    assert all(o[2] <= n[2] + 4096 for o, n in zip(received[old], received[new],
                                                     strict=True)), received
