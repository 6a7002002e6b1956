"""The store's hand-off to its relay (kit.mongo.BaseStore.touched): copies of written
documents up to OUTBOX.handoff_documents, ids beyond that, so that a relay that is behind
a bulk write does not hold every document the write made."""
from kit.mongo import BaseStore


def store(limit):
    return BaseStore(db=None, config={"OUTBOX": {"handoff_documents": limit}})


def test_copies_up_to_the_limit_then_ids():
    s = store(2)
    for n in range(4):
        s.touched("leads", f"l{n}", {"_id": f"l{n}", "outbox": [n]})
    assert s.drain_touched() == {("leads", "l0"): {"_id": "l0", "outbox": [0]},
                                 ("leads", "l1"): {"_id": "l1", "outbox": [1]},
                                 ("leads", "l2"): None, ("leads", "l3"): None}


def test_a_newer_write_replaces_its_copy_without_taking_another_place():
    s = store(2)
    s.touched("leads", "l0", {"_id": "l0", "v": 1})
    s.touched("leads", "l0", {"_id": "l0", "v": 2})
    s.touched("leads", "l1", {"_id": "l1", "v": 1})
    assert s.drain_touched() == {("leads", "l0"): {"_id": "l0", "v": 2},
                                 ("leads", "l1"): {"_id": "l1", "v": 1}}


def test_a_write_handed_over_as_an_id_drops_the_older_copy():
    """An older copy of an entity would miss the newer write's events: its id is read."""
    s = store(1)
    s.touched("leads", "l9", {"_id": "l9", "v": 1})
    s.touched("leads", "l9", None)
    assert s.drain_touched() == {("leads", "l9"): None}


def test_an_entity_that_has_a_place_keeps_it_past_the_limit():
    s = store(1)
    s.touched("leads", "l9", {"_id": "l9", "v": 1})
    s.touched("leads", "l0", {"_id": "l0", "v": 1})
    s.touched("leads", "l9", {"_id": "l9", "v": 2})
    assert s.drain_touched() == {("leads", "l9"): {"_id": "l9", "v": 2},
                                 ("leads", "l0"): None}


def test_a_drain_frees_the_places():
    s = store(1)
    s.touched("leads", "l0", {"_id": "l0"})
    s.drain_touched()
    s.touched("leads", "l1", {"_id": "l1"})
    assert s.drain_touched() == {("leads", "l1"): {"_id": "l1"}}


def test_the_limit_is_configured_with_a_default():
    assert BaseStore(db=None).handoff_documents == 2000
