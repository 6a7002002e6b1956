"""Working time: when an SLA clock runs. Pure (no I/O; the `holidays` package is data).

Two calendars with one interface, `add(start, seconds)` (the instant `seconds` of working
time after `start`) and `between(start, end)` (working seconds from `start` to `end`):
- `AlwaysOn`: 24x7, plain elapsed time;
- `BusinessHours`: working windows (e.g. 09:00-12:00 and 13:00-18:00) on working days in a
  time zone. A working day is a weekday that is not a public holiday, or a weekend day
  declared a make-up working day (China's 调休 Saturdays and Sundays): the `holidays`
  package knows both for the years its authors had the official notice for; the
  `extra_holidays` and `extra_workdays` of the config cover the years it does not (and
  company days off), and win over the package.
Windows are local wall-clock times converted with zoneinfo, so a window on a day a zone
changes its clocks is as long as it really is. Arguments and results are aware UTC.
"""
import datetime as dt
from zoneinfo import ZoneInfo

import holidays

UTC = dt.UTC
DEFAULT_TIME_ZONE = "Asia/Shanghai"
# an SLA that does not fit into this many days of a calendar is a configuration error
MAX_DAYS = 3660


class CalendarError(ValueError):
    """A calendar that cannot be built from its configuration, or never works."""


class AlwaysOn:
    """24x7: every second counts."""

    def __init__(self, time_zone=DEFAULT_TIME_ZONE):
        self.zone = ZoneInfo(time_zone)

    def add(self, start, seconds):
        return start + dt.timedelta(seconds=seconds)

    def between(self, start, end):
        return max(0.0, (end - start).total_seconds())


def _clock(text):
    """"09:30" -> (9, 30); "24:00" is the end of the day."""
    hours, _, minutes = str(text).partition(":")
    hours, minutes = int(hours), int(minutes or 0)
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or (hours == 24 and minutes):
        raise CalendarError(f"Not a time of day: {text!r}.")
    return hours, minutes


def _day(value):
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


class BusinessHours:
    def __init__(self, time_zone=DEFAULT_TIME_ZONE, hours=(("09:00", "18:00"),),
                 country="CN", extra_holidays=(), extra_workdays=(), weekend=(5, 6)):
        self.zone = ZoneInfo(time_zone)
        self.hours = []
        for start, end in hours:
            start, end = _clock(start), _clock(end)
            if end <= start:
                raise CalendarError(f"A working window ends before it starts: {start}-{end}.")
            self.hours.append((start, end))
        self.hours.sort()
        if not self.hours:
            raise CalendarError("A business-hours calendar needs at least one window.")
        self.public = holidays.country_holidays(country) if country else None
        self.extra_holidays = frozenset(map(_day, extra_holidays))
        self.extra_workdays = frozenset(map(_day, extra_workdays))
        self.weekend = frozenset(weekend)

    def is_working_day(self, day):
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        if self.public is not None:
            # weekends, public holidays and the make-up working days the package knows
            return self.public.is_working_day(day)
        return day.weekday() not in self.weekend

    def windows(self, day):
        """The working windows of a local date as aware UTC (start, end) pairs."""
        if not self.is_working_day(day):
            return []
        return [(self._at(day, start), self._at(day, end)) for start, end in self.hours]

    def _at(self, day, hm):
        hours, minutes = hm
        if hours == 24:
            day, hours = day + dt.timedelta(days=1), 0
        return dt.datetime.combine(day, dt.time(hours, minutes), self.zone).astimezone(UTC)

    def add(self, start, seconds):
        remaining = float(seconds)
        day = start.astimezone(self.zone).date()
        for _ in range(MAX_DAYS):
            for opens, closes in self.windows(day):
                begin = max(opens, start)
                if closes <= begin:
                    continue
                span = (closes - begin).total_seconds()
                if remaining <= span:
                    return begin + dt.timedelta(seconds=remaining)
                remaining -= span
            day += dt.timedelta(days=1)
        raise CalendarError(f"No working time within {MAX_DAYS} days of {start}.")

    def between(self, start, end):
        if end <= start:
            return 0.0
        total = 0.0
        day, last = start.astimezone(self.zone).date(), end.astimezone(self.zone).date()
        while day <= last:
            for opens, closes in self.windows(day):
                begin, finish = max(opens, start), min(closes, end)
                if finish > begin:
                    total += (finish - begin).total_seconds()
            day += dt.timedelta(days=1)
        return total


def calendar(settings, time_zone=DEFAULT_TIME_ZONE):
    """A calendar from its config entry: {"always": true} or business-hours settings."""
    settings = settings or {}
    zone = settings.get("time_zone") or time_zone
    try:
        if settings.get("always"):
            return AlwaysOn(zone)
        return BusinessHours(
            zone, hours=settings.get("hours") or (("09:00", "18:00"),),
            country=settings.get("holidays", "CN"),
            extra_holidays=settings.get("extra_holidays") or (),
            extra_workdays=settings.get("extra_workdays") or (),
            weekend=settings.get("weekend", (5, 6)))
    except (KeyError, ValueError, NotImplementedError) as exc:
        raise CalendarError(f"Bad calendar settings: {exc}") from None
