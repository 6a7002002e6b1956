"""Every action from every status: allowed exactly where the table says, else a 409 that
names the allowed actions."""
import pytest

from kit.http import status_of
from quotes import lifecycle as L

# status -> the actions it allows (the whole truth table, written out by hand)
EXPECTED = {
    L.DRAFT: {"edit", "submit", "void"},
    L.SUBMITTED: {"approve", "reject", "revise", "void"},
    L.APPROVED: {"send", "revise", "void"},
    L.REJECTED: {"revise", "void"},
    L.SENT: {"accept", "decline", "expire", "revise", "void"},
    L.ACCEPTED: set(),
    L.DECLINED: {"revise"},
    L.EXPIRED: {"revise"},
    L.VOIDED: set(),
    L.SUPERSEDED: set(),
}


@pytest.mark.parametrize("status", L.STATUSES)
@pytest.mark.parametrize("action", list(L.ACTIONS))
def test_every_action_from_every_status(status, action):
    if action in EXPECTED[status]:
        L.check(status, action)
        return
    with pytest.raises(L.ActionNotAllowed) as caught:
        L.check(status, action)
    assert status_of(caught.value) == 409
    assert caught.value.extra["allowed"] == L.allowed(status)
    assert set(caught.value.extra["allowed"]) == EXPECTED[status]
    for allowed in EXPECTED[status]:
        assert allowed in caught.value.detail


def test_the_table_covers_every_status():
    assert set(EXPECTED) == set(L.STATUSES)
