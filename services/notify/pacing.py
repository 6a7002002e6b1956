"""When a notification may go out: quiet hours in the recipient's time zone, and the
window of the rate limit per recipient. Pure: the caller passes `now` (tests pass any
clock)."""
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


def rate_window(now, per_seconds):
    """The fixed window of the rate limit that `now` falls in: (start, end). Windows are
    aligned to the epoch, so every instance counts into the same one."""
    per = float(per_seconds)
    start = (now.timestamp() // per) * per
    return (dt.datetime.fromtimestamp(start, dt.UTC),
            dt.datetime.fromtimestamp(start + per, dt.UTC))
