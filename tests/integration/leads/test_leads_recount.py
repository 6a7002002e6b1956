"""Open-lead counters that drifted from the leads (a crash between a claim and its lead's
insert) are corrected, but never while a claim may still be in flight."""
import pytest
from pymongo import MongoClient, monitoring

from kit.config import load_config
from leads.store import LeadsStore
from tests.conftest import MONGO_URI, ROOT

ASSIGNMENT = {
    "fallback_queue": "inbox", "default_cap": 10, "caps": {},
    "territories": [{"name": "dach", "countries": ["DE"], "team": "dach"}],
    "teams": {"dach": ["ann"]},
}


@pytest.fixture
def leads(container_factory, make_config, api, mongo_db):
    from leads.service import LeadsService

    config = make_config("leads", ASSIGNMENT=ASSIGNMENT)
    container_factory(LeadsService, config).start()
    client = api(config)
    for n in range(3):
        resp = client.post("/api/v1/leads", json={
            "name": f"L{n}", "email": f"l{n}@example.com", "country": "DE"})
        assert resp.status_code == 201, resp.text
    closed = client.post(f"/api/v1/leads/{resp.json()['id']}/status",
                         json={"status": "disqualified", "reason": "spam"})
    assert closed.status_code == 200, closed.text
    return LeadsStore(mongo_db, load_config(ROOT / "services" / "leads" / "config.yml"))


def test_a_counter_left_behind_by_a_crash_is_corrected(leads, mongo_db):
    assert mongo_db.reps.find_one({"_id": "ann"})["open"] == 2
    # a claim whose lead was never written: the instance died in between
    mongo_db.reps.update_one({"_id": "ann"}, {"$inc": {"open": 1, "touched": 1}})

    assert leads.recount_reps() == {}, "the first pass only notes what it saw"
    assert leads.recount_reps() == {"ann": (3, 2)}
    assert mongo_db.reps.find_one({"_id": "ann"})["open"] == 2
    assert leads.recount_reps() == {}


def test_a_counter_that_moved_between_passes_is_left_alone(leads, mongo_db):
    mongo_db.reps.update_one({"_id": "ann"}, {"$inc": {"open": 1, "touched": 1}})
    leads.recount_reps()
    # another claim lands between the passes: its lead may still be on its way
    mongo_db.reps.update_one({"_id": "ann"}, {"$inc": {"open": 1, "touched": 1}})
    assert leads.recount_reps() == {}
    assert mongo_db.reps.find_one({"_id": "ann"})["open"] == 4


class _LeadReads(monitoring.CommandListener):
    def __init__(self):
        self.commands = []

    def started(self, event):
        if event.command.get(event.command_name) == "leads":
            self.commands.append(event.command_name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_a_counter_checked_at_its_stamp_is_not_counted_again(leads, mongo_db_name):
    """An idle platform counts nothing: after one check, passes read no lead at all."""
    reads = _LeadReads()
    client = MongoClient(MONGO_URI, event_listeners=[reads])
    try:
        store = LeadsStore(client[mongo_db_name], {})
        store.recount_reps()
        assert store.recount_reps() == {} and reads.commands, "the first check counts"
        reads.commands.clear()
        for _ in range(3):
            assert store.recount_reps() == {}
        assert reads.commands == []
        # a claim moves the stamp: that rep is checked again once it is quiet
        client[mongo_db_name].reps.update_one({"_id": "ann"},
                                              {"$inc": {"open": 1, "touched": 1}})
        store.recount_reps()
        assert store.recount_reps() == {"ann": (3, 2)} and reads.commands
    finally:
        client.close()
