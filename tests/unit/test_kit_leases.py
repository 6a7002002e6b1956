"""An outcome written again while the database refuses, with backoff, until shortly before
the claim's lease ends (kit.leases), on a clock the test moves."""
import datetime as dt

import pytest
from pymongo.errors import AutoReconnect, ConnectionFailure, OperationFailure

from kit.leases import margin, write_within_lease

CLAIMED = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


class Clock:
    """A clock that sleeping moves, and the pauses it was asked for."""

    def __init__(self):
        self.now = CLAIMED
        self.pauses = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.pauses.append(seconds)
        self.now += dt.timedelta(seconds=seconds)


def refusing(times, error=ConnectionFailure, result=True):
    """A write that raises `error` its first `times` calls, then returns `result`."""
    calls = []

    def write():
        calls.append(1)
        if len(calls) <= times:
            raise error("database away")
        return result
    write.calls = calls
    return write


def test_a_write_that_lands_at_once_is_not_tried_again():
    clock, write = Clock(), refusing(0, result="written")
    assert write_within_lease(write, CLAIMED, 60, clock=clock, sleep=clock.sleep) == "written"
    assert (len(write.calls), clock.pauses) == (1, [])


def test_a_refused_write_is_tried_again_with_doubling_pauses_up_to_two_seconds():
    clock, write = Clock(), refusing(7, result=False)
    assert write_within_lease(write, CLAIMED, 60, clock=clock, sleep=clock.sleep) is False
    assert len(write.calls) == 8
    assert clock.pauses == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0])


def test_a_subclass_of_connection_failure_is_tried_again():
    clock, write = Clock(), refusing(1, error=AutoReconnect)
    assert write_within_lease(write, CLAIMED, 60, clock=clock, sleep=clock.sleep) is True
    assert len(write.calls) == 2


def test_another_database_error_is_raised_at_once():
    clock, write = Clock(), refusing(1, error=OperationFailure)
    with pytest.raises(OperationFailure):
        write_within_lease(write, CLAIMED, 60, clock=clock, sleep=clock.sleep)
    assert (len(write.calls), clock.pauses) == (1, [])


@pytest.mark.parametrize("lease", [60, 12, 2])
def test_tries_stop_before_the_lease_ends_less_the_margin(lease):
    clock, write = Clock(), refusing(10_000)
    with pytest.raises(ConnectionFailure):
        write_within_lease(write, CLAIMED, lease, clock=clock, sleep=clock.sleep)
    deadline = CLAIMED + dt.timedelta(seconds=lease - margin(lease))
    assert clock.now < deadline  # no pause ran into the margin
    # and the last pause was refused only because it would have
    assert clock.now + dt.timedelta(seconds=min(clock.pauses[-1] * 2, 2.0)) >= deadline


def test_a_write_refused_once_the_deadline_is_near_is_not_tried_again():
    clock, write = Clock(), refusing(1)
    clock.now = CLAIMED + dt.timedelta(seconds=60 - margin(60) - 0.05)
    with pytest.raises(ConnectionFailure):
        write_within_lease(write, CLAIMED, 60, clock=clock, sleep=clock.sleep)
    assert (len(write.calls), clock.pauses) == (1, [])


@pytest.mark.parametrize("lease, expected", [(60, 5.0), (20, 5.0), (12, 3.0), (2, 0.5)])
def test_the_margin_is_five_seconds_or_a_quarter_of_a_short_lease(lease, expected):
    assert margin(lease) == expected
