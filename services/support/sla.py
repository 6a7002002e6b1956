"""SLA arithmetic. Pure: every function takes `now` (the injectable clock) and a calendar
(support.worktime) and returns new values; nothing here reads the time or the database.

A ticket has two clocks, `first_response` and `resolution`. A clock holds its target and
the working seconds consumed so far; while it runs, `since` says from when more is being
consumed, and `due_at`/`warn_at` say when the target (and the warning fraction of it) is
reached on the calendar. Pausing (the ticket waits on the customer) banks the consumed
time and clears the instants; resuming computes them again from what is left, so a pause
moves the due time by exactly the working time it lasted. Warning and breach are flags:
each fires at most once per clock, whatever the number of timers that look.
"""
from support.worktime import AlwaysOn, calendar

KINDS = ("first_response", "resolution")
DEFAULT_TIER = "default"


class PolicyError(ValueError):
    """The SLA configuration names no policy for a ticket."""


def policy(settings, priority, tier=None):
    """{"calendar": name, "first_response": seconds, "resolution": seconds} for a ticket:
    the tier's policy for its priority, else the default tier's."""
    policies = settings.get("policies") or {}
    for name in (tier, DEFAULT_TIER):
        entry = (policies.get(name) or {}).get(priority) if name else None
        if entry:
            return {"calendar": entry.get("calendar", "business"),
                    "first_response": float(entry["first_response_minutes"]) * 60,
                    "resolution": float(entry["resolution_minutes"]) * 60}
    raise PolicyError(f"No SLA policy for priority {priority!r} (tier {tier!r}).")


def calendars(settings):
    """Every calendar the SLA settings name, built once."""
    zone = settings.get("time_zone") or "Asia/Shanghai"
    built = {name: calendar(entry, zone)
             for name, entry in (settings.get("calendars") or {}).items()}
    built.setdefault("24x7", AlwaysOn(zone))
    return built


def start(target, now, cal, fraction):
    """A running clock that starts at `now`."""
    return resume({"target": target, "consumed": 0.0, "since": None, "due_at": None,
                   "warn_at": None, "warned": False, "breached": False, "stopped_at": None},
                  now, cal, fraction)


def resume(clock, now, cal, fraction):
    if clock["since"] is not None or clock["stopped_at"] is not None:
        return clock
    left = clock["target"] - clock["consumed"]
    warn_left = clock["target"] * fraction - clock["consumed"]
    return {**clock, "since": now,
            "due_at": cal.add(now, max(0.0, left)),
            "warn_at": None if clock["warned"] else cal.add(now, max(0.0, warn_left))}


def pause(clock, now, cal):
    if clock["since"] is None:
        return clock
    return {**clock, "consumed": clock["consumed"] + cal.between(clock["since"], now),
            "since": None, "due_at": None, "warn_at": None}


def stop(clock, now, cal):
    """The clock's goal was reached (first response given, ticket resolved)."""
    if clock["stopped_at"] is not None:
        return clock
    return {**pause(clock, now, cal), "stopped_at": now}


def restart(clock, now, cal, fraction):
    """A stopped clock runs on from what it consumed (a reopened ticket's resolution)."""
    return resume({**clock, "stopped_at": None, "since": None}, now, cal, fraction)


def consumed(clock, now, cal):
    """Working seconds consumed up to `now`."""
    running = cal.between(clock["since"], now) if clock["since"] is not None else 0.0
    return clock["consumed"] + running


def met(clock):
    """True/False once stopped: the goal was reached within the target."""
    if clock["stopped_at"] is None:
        return None
    return not clock["breached"] and clock["consumed"] <= clock["target"]


def next_check(clocks):
    """The earliest instant a timer has something to do for these clocks (None: never):
    the ticket's indexed `sla_due_at`."""
    times = []
    for clock in clocks.values():
        if clock["since"] is None:
            continue
        if not clock["warned"] and clock["warn_at"] is not None:
            times.append(clock["warn_at"])
        if not clock["breached"] and clock["due_at"] is not None:
            times.append(clock["due_at"])
    return min(times) if times else None


def due(clocks, now):
    """(clocks after, [(kind, "warning" | "breached", due_at)]) for the thresholds reached
    at `now`. A check that comes late (after the due time) reports the warning too, first,
    so every breached clock has had its one warning whatever the timers' pace."""
    after, fired = {}, []
    for kind in KINDS:
        clock = clocks.get(kind)
        if clock is None or clock["since"] is None:
            if clock is not None:
                after[kind] = clock
            continue
        if not clock["warned"] and clock["warn_at"] is not None and clock["warn_at"] <= now:
            clock = {**clock, "warned": True}
            fired.append((kind, "warning", clock["due_at"]))
        if not clock["breached"] and clock["due_at"] is not None and clock["due_at"] <= now:
            clock = {**clock, "breached": True, "warned": True}
            fired.append((kind, "breached", clock["due_at"]))
        after[kind] = clock
    return after, fired
