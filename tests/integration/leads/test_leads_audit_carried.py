"""A lead's creation carries its audit entry in the lead's insert (kit.audit `carried`,
kit.outbox.with_audit), and the outbox relay moves it into `audit` before it publishes the
lead's events: killed between any two steps, nothing is lost and nothing is doubled — no
event without its audit entry, one entry per request however often the relay retries."""
import datetime as dt

import pytest

from kit.amqp import ConfirmingPublisher
from kit.outbox import AUDIT, OUTBOX, SINCE, OutboxRelay
from tests.support.amqp import Subscriber

QUIET = {"OUTBOX": {"relay_enabled": False},  # the tests drive the relays by hand
         "FOLLOWUP": {"check_interval_seconds": 3600},
         "SLA": {"check_interval_seconds": 3600, "response_minutes": 0},
         "CAPTURE": {"sweep_interval_seconds": 3600},
         "ASSIGNMENT": {"fallback_queue": "inbox", "default_cap": 50, "caps": {},
                        "territories": [], "teams": {},
                        "recount_interval_seconds": 3600}}


class Killed(Exception):
    pass


class KilledAfterAudit(OutboxRelay):
    """Inserts the audit entries, then dies before it publishes."""

    def _insert_audit(self, entries):
        super()._insert_audit(entries)
        raise Killed()


class KilledAfterPublish(OutboxRelay):
    """Inserts the audit entries and publishes, then dies before the clear."""

    def remove_many(self, coll, published, extra=None):
        raise Killed()


@pytest.fixture
def leads(container_factory, make_config, api):
    from leads.service import LeadsService

    config = make_config("leads", **QUIET)
    container_factory(LeadsService, config).start()
    return api(config)


@pytest.fixture
def publisher(rabbit_config):
    publisher = ConfirmingPublisher(rabbit_config["AMQP_URI"])
    yield publisher
    publisher.close()


@pytest.fixture
def created(rabbit_config):
    sub = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.created")
    yield sub
    sub.close()


def capture(leads):
    resp = leads.post("/api/v1/leads", json={"name": "Ada", "email": "ada@ex.org",
                                             "source": "web_form"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def entries(mongo_db):
    return [(e["action"], e["status"], e["actor"]) for e in mongo_db.audit.find({})]


def cleared(mongo_db, lead_id):
    doc = mongo_db.leads.find_one({"_id": lead_id})
    return doc[OUTBOX] == [] and SINCE not in doc and AUDIT not in doc


def test_killed_before_the_relay_the_entry_waits_in_the_lead_for_the_sweep(
        leads, mongo_db, publisher, created):
    lead_id = capture(leads)
    # the service answered 201 and nothing relayed yet (as if killed at once)
    [entry] = mongo_db.leads.find_one({"_id": lead_id})[AUDIT]
    assert (entry["action"], entry["status"], entry["target"]) == ("create_lead", 201, None)
    assert entries(mongo_db) == []

    assert OutboxRelay(mongo_db, ["leads"], publisher, grace_seconds=0).sweep() == 2
    assert entries(mongo_db) == [("create_lead", 201, entry["actor"])]
    assert [e["subject"] for e in created.drain(expect=1, timeout=10)] == [lead_id]
    assert cleared(mongo_db, lead_id)


@pytest.mark.parametrize("relay", [KilledAfterAudit, KilledAfterPublish])
def test_a_relay_killed_between_steps_leaves_one_entry_and_the_events_follow(
        leads, mongo_db, publisher, created, relay):
    lead_id = capture(leads)
    with pytest.raises(Killed):
        relay(mongo_db, ["leads"], publisher, grace_seconds=0).sweep()
    # the entry is in `audit` before any event of the lead went out
    assert len(entries(mongo_db)) == 1
    assert AUDIT in mongo_db.leads.find_one({"_id": lead_id})

    # the next relay (after the restart) inserts it again (a duplicate: still one),
    # publishes, and clears
    assert OutboxRelay(mongo_db, ["leads"], publisher, grace_seconds=0).sweep() == 2
    assert len(entries(mongo_db)) == 1
    assert cleared(mongo_db, lead_id)
    events = created.drain(expect=1, timeout=10)
    events += created.drain(timeout=0.5)
    assert {e["subject"] for e in events} == {lead_id}
    assert len(events) == (2 if relay is KilledAfterPublish else 1)


def test_an_outbox_that_grew_meanwhile_keeps_the_newer_entry_and_events(
        leads, mongo_db, publisher):
    lead_id = capture(leads)
    doc = mongo_db.leads.find_one({"_id": lead_id})
    # another write came between the relay's read and its clear, with its own events
    # and audit entry (kit.outbox.with_audit: entries come with events)
    newer_event = {**doc[OUTBOX][0], "id": "newer"}
    newer_entry = {**doc[AUDIT][0], "_id": "newer-entry"}
    mongo_db.leads.update_one({"_id": lead_id}, {"$push": {OUTBOX: newer_event,
                                                           AUDIT: newer_entry}})
    # (the copy is younger than the grace: published as it is, not read again)
    relay = OutboxRelay(mongo_db, ["leads"], publisher, grace_seconds=60)
    assert relay.publish_entities({("leads", lead_id): doc}) == 2

    after = mongo_db.leads.find_one({"_id": lead_id})
    assert [e["id"] for e in after[OUTBOX]] == ["newer"]
    assert [e["_id"] for e in after[AUDIT]] == ["newer-entry"]
    assert [e["_id"] for e in mongo_db.audit.find({})] == [doc[AUDIT][0]["_id"]]
    # the sweep takes the rest
    assert relay.sweep(older_than=dt.timedelta(0)) == 1
    assert sorted(e["_id"] for e in mongo_db.audit.find({})) == sorted(
        [doc[AUDIT][0]["_id"], "newer-entry"])
    assert cleared(mongo_db, lead_id)


def test_a_duplicate_capture_writes_its_entry_itself(leads, mongo_db):
    capture(leads)
    again = leads.post("/api/v1/leads", json={"name": "Ada", "email": "ada@ex.org",
                                              "source": "web_form"})
    assert again.status_code == 409
    # the refused request carried nothing: its entry is written with the answer (the
    # first one's still rides in its lead: no relay runs here)
    assert [e[:2] for e in entries(mongo_db)] == [("create_lead", 409)]
