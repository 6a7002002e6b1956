"""Quiet hours in the recipient's time zone and the rate limit, with an explicit clock."""
import datetime as dt

import pytest

from kit.errors import Invalid
from notify.pacing import quiet_until, rate_window

UTC = dt.UTC
NIGHT = {"start": "22:00", "end": "08:00"}


def at(*args):
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("now, expected", [
    # Shanghai is UTC+8: 15:00 UTC is 23:00 there, quiet until 08:00 next day (00:00 UTC)
    (at(2026, 5, 4, 15, 0), at(2026, 5, 5, 0, 0)),
    # 20:00 UTC is 04:00 the next day there: quiet until 08:00 that day
    (at(2026, 5, 4, 20, 0), at(2026, 5, 5, 0, 0)),
    # 02:00 UTC is 10:00 there: not quiet
    (at(2026, 5, 4, 2, 0), None),
    # exactly at the end: not quiet any more
    (at(2026, 5, 5, 0, 0), None),
    # exactly at the start: quiet
    (at(2026, 5, 4, 14, 0), at(2026, 5, 5, 0, 0)),
])
def test_overnight_quiet_hours_in_shanghai(now, expected):
    assert quiet_until(now, NIGHT, "Asia/Shanghai") == expected


def test_daytime_quiet_hours():
    lunch = {"start": "12:00", "end": "13:30"}
    assert quiet_until(at(2026, 1, 10, 11, 15), lunch, "Europe/Berlin") == at(2026, 1, 10, 12, 30)
    assert quiet_until(at(2026, 1, 10, 13, 15), lunch, "Europe/Berlin") is None


def test_quiet_hours_follow_daylight_saving():
    # Berlin: 22:30 local is 20:30 UTC in summer, 21:30 UTC in winter; both are quiet
    assert quiet_until(at(2026, 7, 1, 20, 30), NIGHT, "Europe/Berlin") == at(2026, 7, 2, 6, 0)
    assert quiet_until(at(2026, 1, 1, 21, 30), NIGHT, "Europe/Berlin") == at(2026, 1, 2, 7, 0)


@pytest.mark.parametrize("hours", [None, {}, {"start": "", "end": ""},
                                   {"start": "08:00", "end": "08:00"}])
def test_no_quiet_hours(hours):
    assert quiet_until(at(2026, 5, 4, 15, 0), hours, "Asia/Shanghai") is None


@pytest.mark.parametrize("hours, zone", [({"start": "22", "end": "08:00"}, "UTC"),
                                         (NIGHT, "Mars/Olympus")])
def test_bad_quiet_hours_are_refused(hours, zone):
    with pytest.raises(Invalid):
        quiet_until(at(2026, 5, 4, 15, 0), hours, zone)


def test_rate_windows_are_aligned_to_the_epoch():
    assert rate_window(at(2026, 5, 4, 12, 59, 59), 3600) == (at(2026, 5, 4, 12), at(2026, 5, 4, 13))
    assert rate_window(at(2026, 5, 4, 13, 0, 0), 3600) == (at(2026, 5, 4, 13), at(2026, 5, 4, 14))
    assert rate_window(at(2026, 5, 4, 13, 7, 30), 300) == (at(2026, 5, 4, 13, 5),
                                                          at(2026, 5, 4, 13, 10))
