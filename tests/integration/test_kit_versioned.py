"""The versioned-change helper on the real database: events numbered by the version with no
gaps, writes without events still guarded, lost races decided again, If-Match, consumed
events applied once."""
import pytest

from kit.changes import Change
from kit.errors import Contention, NotFound
from kit.versioned import Stale, Versioned, new_entity


def assigned(owner):
    return ("lead.assigned", {"lead_id": "t1", "owner_id": owner, "rule": "manual"})


@pytest.fixture
def things(mongo_db):
    touched = []
    mongo_db.things.insert_one(new_entity({"_id": "t1", "owner": "ann"}, [assigned("ann")]))
    helper = Versioned(mongo_db.things, what="thing",
                       touched=lambda coll, _id, doc=None: touched.append((coll, _id)))
    helper.touched_refs = touched
    return helper


def owner_to(name):
    return lambda thing: Change(set={"owner": name}, events=[assigned(name)])


def test_events_follow_the_version_and_writes_without_events_leave_no_gap(things, mongo_db):
    things.change("t1", lambda thing: Change(set={"note": "no event"}))
    after, _ = things.change("t1", owner_to("bob"))
    assert (after["version"], after["revision"], after["owner"]) == (2, 2, "bob")
    assert "outbox" not in after
    stored = mongo_db.things.find_one({"_id": "t1"})
    assert [e["dealflowsequence"] for e in stored["outbox"]] == [1, 2]
    assert things.touched_refs == [("things", "t1")]  # only the write with an event


def test_nothing_to_do_writes_nothing(things, mongo_db):
    before = mongo_db.things.find_one({"_id": "t1"})
    thing, change = things.change("t1", lambda thing: None)
    assert change is None and thing["version"] == 1
    assert mongo_db.things.find_one({"_id": "t1"}) == before


def test_a_lost_race_is_decided_again_on_the_new_state(things, mongo_db):
    seen = []

    def decide(thing):
        seen.append(thing["owner"])
        if len(seen) == 1:  # another writer slips in between this read and this write
            things.change("t1", lambda t: Change(set={"owner": "eve"}))
        return Change(set={"owner": thing["owner"] + "+"})

    after, _ = things.change("t1", decide)
    assert seen == ["ann", "eve"] and after["owner"] == "eve+" and after["revision"] == 2


def test_endless_races_end_in_contention(things, mongo_db):
    def decide(thing):
        mongo_db.things.update_one({"_id": "t1"}, {"$inc": {"revision": 1}})
        return Change(set={"owner": "x"})

    with pytest.raises(Contention):
        things.change("t1", decide)
    assert mongo_db.things.find_one({"_id": "t1"})["owner"] == "ann"


def test_if_match_pins_the_version(things):
    with pytest.raises(Stale) as exc:
        things.change("t1", owner_to("bob"), expected=7)
    assert exc.value.extra == {"current_version": 1}
    assert things.change("t1", owner_to("bob"), expected=1)[0]["version"] == 2


def test_a_consumed_event_is_applied_once(things, mongo_db):
    things.change("t1", owner_to("bob"), event_id="e1")
    thing, change = things.change("t1", owner_to("eve"), event_id="e1")
    assert change is None and thing["owner"] == "bob" and "applied" not in thing
    assert mongo_db.things.find_one({"_id": "t1"})["applied"] == ["e1"]


def test_an_unknown_entity_is_not_found(things):
    with pytest.raises(NotFound):
        things.change("nope", owner_to("bob"))


def test_a_write_refused_by_a_unique_index_is_a_conflict_on_any_server(mongo_db):
    """MongoDB answers 11000; FerretDB v1 answers an update that breaks a unique index
    with InternalError (1) naming SQLite's UNIQUE constraint: both are the domain's 409."""
    from kit.errors import Conflict

    mongo_db.keyed.create_index("key", unique=True)
    mongo_db.keyed.insert_many([new_entity({"_id": "a", "key": "x"}, []),
                                new_entity({"_id": "b", "key": "y"}, [])])
    helper = Versioned(mongo_db.keyed, what="keyed", unique_conflict="That key is taken.",
                       touched=lambda *args: None)
    with pytest.raises(Conflict, match="That key is taken."):
        helper.change("b", lambda doc: Change(set={"key": "x"}))
    assert mongo_db.keyed.find_one({"_id": "b"})["key"] == "y"
