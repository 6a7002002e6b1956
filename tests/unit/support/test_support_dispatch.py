"""Dispatch order: category skill, availability, capacity, least loaded, previous agent."""
import pytest

from support.dispatch import candidates, roster_entry


def agent(_id, load, capacity=4, skills=("billing",), available=True):
    return {"_id": _id, "load": load, "capacity": capacity, "skills": list(skills),
            "available": available}


@pytest.mark.parametrize("agents, category, previous, expected", [
    # the category's skill first of all
    ([agent("a", 0, skills=["hardware"]), agent("b", 3)], "billing", None, ["b"]),
    # least loaded by share of capacity, then by count, then id
    ([agent("a", 2), agent("b", 1), agent("c", 1, capacity=2)], "billing", None,
     ["b", "c", "a"]),
    ([agent("b", 1), agent("a", 1)], "billing", None, ["a", "b"]),
    # full and unavailable agents are out
    ([agent("a", 4), agent("b", 0, available=False), agent("c", 3)], "billing", None, ["c"]),
    # "*" takes any category; a ticket without category only goes to "*"
    ([agent("a", 0, skills=["*"]), agent("b", 0)], None, None, ["a"]),
    ([agent("a", 1, skills=["*"]), agent("b", 0)], "billing", None, ["b", "a"]),
    # the previous agent of a reopened ticket comes first if able
    ([agent("a", 3), agent("b", 0)], "billing", "a", ["a", "b"]),
    ([agent("a", 4), agent("b", 0)], "billing", "a", ["b"]),
    # nobody: the ticket waits in the queue
    ([agent("a", 4)], "billing", None, []),
    ([], "billing", None, []),
])
def test_candidates(agents, category, previous, expected):
    assert candidates(agents, category, previous) == expected


def test_roster_entries():
    assert roster_entry({"id": 7, "skills": ["x"], "capacity": "3"}) == {
        "_id": "7", "skills": ["x"], "capacity": 3, "available": True}
    with pytest.raises(ValueError, match="capacity"):
        roster_entry({"id": "a", "capacity": 0})
