"""A dispatch pass: a ticket that fails is logged and skipped, the others are still
offered; a pass offered after another write never turns that write into an error."""
import logging

import pytest
from pymongo.errors import AutoReconnect

from kit.errors import Unavailable
from support import domain as D
from support.dispatcher import Dispatcher


class Queue:
    """The queue a pass reads (the rest of the store is the dispatch's, stubbed below)."""

    def __init__(self, *ids):
        self.rows = [{"_id": i, "category": "billing"} for i in ids]

    def queued(self, limit):
        return self.rows[:limit]


class Scripted(Dispatcher):
    """Dispatches every ticket but "bad", which raises `error`."""

    def __init__(self, error):
        super().__init__(Queue("t1", "bad", "t3"), now=None)
        self.error = error
        self.placed = []

    def dispatch(self, ticket_id):
        if ticket_id == "bad":
            raise self.error
        self.placed.append(ticket_id)
        return {"_id": ticket_id}


@pytest.mark.parametrize("error", [
    D.InvalidMove("A closed ticket cannot be assigned."),
    KeyError("priority"),  # a stored ticket without a field the rules read
], ids=["refused", "malformed"])
def test_a_ticket_that_fails_is_logged_and_the_pass_goes_on(error, caplog):
    dispatcher = Scripted(error)
    with caplog.at_level(logging.ERROR, logger="support.dispatcher"):
        assert dispatcher.drain(limit=10) == 2
    assert dispatcher.placed == ["t1", "t3"]
    assert "bad" in caplog.text


@pytest.mark.parametrize("error", [AutoReconnect("down"), Unavailable("down")],
                         ids=["database", "unavailable"])
def test_an_outage_ends_the_pass(error):
    dispatcher = Scripted(error)
    with pytest.raises(type(error)):
        dispatcher.drain(limit=10)
    assert dispatcher.placed == ["t1"]


@pytest.mark.parametrize("error", [AutoReconnect("down"), D.InvalidMove("closed")],
                         ids=["database", "refused"])
def test_an_offer_after_another_write_logs_its_failure(error, caplog):
    dispatcher = Scripted(error)
    dispatcher.store.rows = [{"_id": "bad", "category": None}]
    with caplog.at_level(logging.ERROR, logger="support.dispatcher"):
        dispatcher.offer(limit=10)
    assert caplog.records
