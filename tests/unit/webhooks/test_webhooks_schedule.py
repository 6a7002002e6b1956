"""Retries with growing delays for at least a day, then failed; a failing subscription
turned off after a run of failures."""
import datetime as dt

import pytest

from webhooks.schedule import (
    DELIVERED,
    GONE,
    RETRY,
    RetryPolicy,
    next_attempt,
    outcome,
    should_disable,
)

T0 = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
POLICY = RetryPolicy.from_config({
    "first_delay_seconds": 5, "factor": 2, "max_delay_seconds": 3600,
    "give_up_after_hours": 24, "disable_after_failures": 50, "disable_after_hours": 72})


@pytest.mark.parametrize("status, expected", [
    (200, DELIVERED), (204, DELIVERED), (299, DELIVERED), (410, GONE), (301, RETRY),
    (400, RETRY), (429, RETRY), (500, RETRY), (503, RETRY), (None, RETRY)])
def test_what_an_answer_means(status, expected):
    assert outcome(status) == expected


def test_delays_grow_up_to_the_cap():
    delays = [next_attempt(POLICY, T0, n, T0) - T0 for n in range(1, 12)]
    assert delays[:4] == [dt.timedelta(seconds=s) for s in (5, 10, 20, 40)]
    assert delays[-1] == dt.timedelta(hours=1)
    assert delays == sorted(delays)


def test_a_delivery_is_tried_for_a_whole_day_then_given_up():
    now, attempts, times = T0, 1, [T0]
    while (at := next_attempt(POLICY, T0, attempts, now)) is not None:
        now, attempts = at, attempts + 1
        times.append(at)
    assert times[-1] - T0 >= dt.timedelta(hours=24)
    assert times[-1] - T0 < dt.timedelta(hours=25)


@pytest.mark.parametrize("failures, since_hours, disabled", [
    (49, 1, False), (50, 1, True), (3, 71, False), (3, 72, True)])
def test_a_failing_subscription_is_turned_off(failures, since_hours, disabled):
    now = T0 + dt.timedelta(hours=since_hours)
    assert should_disable(POLICY, failures, T0, now) == disabled


def test_a_subscription_without_failures_stays_on():
    assert not should_disable(POLICY, 0, None, T0)
