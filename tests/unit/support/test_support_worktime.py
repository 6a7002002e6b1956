"""Working time on calendars: weekends, China's Spring Festival with its make-up working
days (from the holidays package for 2026, from the config for 2027), lunch breaks, and
zones with and without daylight saving time."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from support.worktime import AlwaysOn, BusinessHours, CalendarError, calendar

SH = "Asia/Shanghai"
H = 3600


def at(y, m, d, hh=0, mm=0, zone=SH):
    return dt.datetime(y, m, d, hh, mm, tzinfo=ZoneInfo(zone)).astimezone(dt.UTC)


CN = BusinessHours(SH)
# 2027's official schedule is not in the package: the config adds it
CN_2027 = BusinessHours(SH, extra_holidays=["2027-02-11", "2027-02-12"],
                        extra_workdays=["2027-02-20"])
LUNCH = BusinessHours(SH, hours=[("09:00", "12:00"), ("13:00", "18:00")])
BERLIN_ALL_DAY = BusinessHours("Europe/Berlin", hours=[("00:00", "24:00")], country=None,
                               weekend=())
BERLIN = BusinessHours("Europe/Berlin", hours=[("09:00", "18:00")], country="DE")


@pytest.mark.parametrize("cal, start, hours, due", [
    # inside one window
    (CN, at(2026, 3, 2, 9), 4, at(2026, 3, 2, 13)),
    # before opening: starts at 09:00
    (CN, at(2026, 3, 2, 7), 1, at(2026, 3, 2, 10)),
    # Friday evening -> Monday morning over a weekend
    (CN, at(2026, 3, 6, 17), 2, at(2026, 3, 9, 10)),
    # Friday before the Spring Festival: the make-up Saturday 2026-02-14 is a working day
    (CN, at(2026, 2, 13, 17), 4, at(2026, 2, 14, 12)),
    # the make-up Saturday, then the whole festival (02-15..02-23) until Tuesday 02-24
    (CN, at(2026, 2, 14, 17), 2, at(2026, 2, 24, 10)),
    # a ticket opened during the festival waits for its end
    (CN, at(2026, 2, 18, 10), 1, at(2026, 2, 24, 10)),
    # the second make-up Saturday after it, 2026-02-28, works
    (CN, at(2026, 2, 27, 17), 2, at(2026, 2, 28, 10)),
    # National Day 2026: 10-01..10-07 off, Saturday 10-10 a make-up working day
    (CN, at(2026, 9, 30, 17), 2, at(2026, 10, 8, 10)),
    (CN, at(2026, 10, 9, 17), 2, at(2026, 10, 10, 10)),
    # Spring Festival 2027: the package's days off (02-05..02-10), the config's 02-11/12
    (CN_2027, at(2027, 2, 4, 17), 2, at(2027, 2, 15, 10)),
    # and the config's make-up Saturday 2027-02-20
    (CN_2027, at(2027, 2, 19, 17), 2, at(2027, 2, 20, 10)),
    # without the config, 2027-02-11 is a working day
    (CN, at(2027, 2, 4, 17), 2, at(2027, 2, 11, 10)),
    # the lunch break does not count
    (LUNCH, at(2026, 3, 2, 11, 30), 1, at(2026, 3, 2, 13, 30)),
    # a day whose clocks jump forward (Berlin 2026-03-29) has 23 hours
    (BERLIN_ALL_DAY, at(2026, 3, 29, 0, zone="Europe/Berlin"), 24,
     at(2026, 3, 30, 1, zone="Europe/Berlin")),
    # and one whose clocks fall back (2026-10-25) has 25
    (BERLIN_ALL_DAY, at(2026, 10, 25, 0, zone="Europe/Berlin"), 24,
     at(2026, 10, 25, 23, zone="Europe/Berlin")),
    # business hours in a DST zone stay 09:00-18:00 local across the change (and Easter
    # Friday 04-03 and Easter Monday 04-06 are German holidays)
    (BERLIN, at(2026, 3, 27, 17, zone="Europe/Berlin"), 2,
     at(2026, 3, 30, 10, zone="Europe/Berlin")),
    (BERLIN, at(2026, 4, 2, 17, zone="Europe/Berlin"), 2,
     at(2026, 4, 7, 10, zone="Europe/Berlin")),
    # 24x7 is plain time, even across a DST change
    (AlwaysOn("Europe/Berlin"), at(2026, 3, 29, 0, zone="Europe/Berlin"), 24,
     at(2026, 3, 30, 1, zone="Europe/Berlin")),
    (AlwaysOn(), at(2026, 2, 14, 17), 48, at(2026, 2, 16, 17)),
])
def test_add_and_between_agree(cal, start, hours, due):
    assert cal.add(start, hours * H) == due
    assert cal.between(start, due) == hours * H


@pytest.mark.parametrize("day, working", [
    (dt.date(2026, 2, 14), True),    # make-up Saturday
    (dt.date(2026, 2, 15), False),   # Sunday
    (dt.date(2026, 2, 17), False),   # Spring Festival
    (dt.date(2026, 2, 23), False),   # a day off moved from 02-28
    (dt.date(2026, 2, 24), True),
    (dt.date(2026, 1, 4), True),     # make-up Sunday for New Year
    (dt.date(2026, 3, 7), False),    # ordinary Saturday
])
def test_china_working_days(day, working):
    assert CN.is_working_day(day) is working


def test_between_counts_nothing_outside_windows():
    assert CN.between(at(2026, 2, 15, 8), at(2026, 2, 23, 20)) == 0
    assert CN.between(at(2026, 3, 2, 12), at(2026, 3, 2, 11)) == 0
    assert CN.between(at(2026, 3, 6, 17), at(2026, 3, 9, 10)) == 2 * H


@pytest.mark.parametrize("settings, error", [
    ({"hours": [["18:00", "09:00"]]}, "ends before it starts"),
    ({"hours": [["25:00", "26:00"]]}, "Not a time of day"),
    ({"time_zone": "Mars/Olympus"}, "Bad calendar settings"),
    ({"holidays": "XX"}, "Bad calendar settings"),
    ({"hours": [["09:00", "18:00"]], "holidays": None, "weekend": [0, 1, 2, 3, 4, 5, 6]},
     None),
])
def test_calendar_settings(settings, error):
    if error is None:
        cal = calendar(settings)
        with pytest.raises(CalendarError, match="No working time"):
            cal.add(at(2026, 3, 2), 1)
        return
    with pytest.raises(CalendarError, match=error):
        calendar(settings)


def test_calendar_from_settings_uses_the_default_zone():
    cal = calendar({"extra_workdays": ["2027-02-20"]})
    assert cal.zone == ZoneInfo(SH) and cal.is_working_day(dt.date(2027, 2, 20))
    assert isinstance(calendar({"always": True}), AlwaysOn)
