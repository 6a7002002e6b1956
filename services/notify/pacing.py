"""When a notification may go out: quiet hours in the recipient's time zone, and a rate
limit per recipient. Pure: the caller passes `now` (tests pass any clock)."""
import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kit.errors import Invalid


def parse_hhmm(text, what="quiet hours"):
    try:
        hours, minutes = (int(part) for part in str(text).split(":"))
        return dt.time(hours, minutes)
    except ValueError:
        raise Invalid(f"{what}: {text!r} is not HH:MM.") from None


def zone(name):
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"Unknown time zone {name!r}.") from None


def quiet_until(now, quiet_hours, time_zone):
    """The UTC time quiet hours end if `now` falls inside them, else None.

    Quiet hours are local wall-clock times {start, end}; start > end spans midnight
    (22:00-08:00). No start or end, or start == end, means none."""
    start, end = (quiet_hours or {}).get("start"), (quiet_hours or {}).get("end")
    if not start or not end:
        return None
    start, end = parse_hhmm(start), parse_hhmm(end)
    if start == end:
        return None
    tz = zone(time_zone)
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= clock < end
        day = local.date()
    else:
        inside = clock >= start or clock < end
        day = local.date() + dt.timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    # a wall-clock time that a DST jump skips is read as the instant after the jump
    release = dt.datetime.combine(day, end, tzinfo=tz)
    return release.astimezone(dt.UTC)


def rate_limited_until(sent_times, now, count, per_seconds):
    """None if one more may go now, else when the oldest send in the window leaves it.
    `sent_times` are the recipient's sends (on this channel) within the last window."""
    if count <= 0:
        return None
    window = dt.timedelta(seconds=per_seconds)
    recent = sorted(t for t in sent_times if t > now - window)
    if len(recent) < count:
        return None
    return recent[len(recent) - count] + window
