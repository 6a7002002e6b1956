"""SLA clocks: policies per priority and tier, due and warning instants on business
hours and 24x7, pauses while the ticket waits on the customer, and each warning and
breach reported once."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from support import sla
from support.worktime import AlwaysOn, BusinessHours

SH = ZoneInfo("Asia/Shanghai")
H = 3600
CN = BusinessHours("Asia/Shanghai")
ALWAYS = AlwaysOn()

SETTINGS = {
    "time_zone": "Asia/Shanghai",
    "calendars": {"business": {"hours": [["09:00", "18:00"]]}},
    "policies": {
        "default": {
            "urgent": {"first_response_minutes": 30, "resolution_minutes": 240,
                       "calendar": "24x7"},
            "normal": {"first_response_minutes": 240, "resolution_minutes": 1080},
        },
        "gold": {"normal": {"first_response_minutes": 60, "resolution_minutes": 540}},
    },
}


def at(m, d, hh=0, mm=0, y=2026):
    return dt.datetime(y, m, d, hh, mm, tzinfo=SH).astimezone(dt.UTC)


@pytest.mark.parametrize("priority, tier, expected", [
    ("urgent", None, {"calendar": "24x7", "first_response": 1800, "resolution": 14400}),
    ("normal", None, {"calendar": "business", "first_response": 4 * H, "resolution": 18 * H}),
    ("normal", "gold", {"calendar": "business", "first_response": H, "resolution": 9 * H}),
    # a tier without a policy for the priority falls back to the default tier
    ("urgent", "gold", {"calendar": "24x7", "first_response": 1800, "resolution": 14400}),
    ("normal", "unknown", {"calendar": "business", "first_response": 4 * H,
                           "resolution": 18 * H}),
])
def test_policy_per_priority_and_tier(priority, tier, expected):
    assert sla.policy(SETTINGS, priority, tier) == expected


def test_a_priority_without_policy_is_an_error():
    with pytest.raises(sla.PolicyError, match="'low'"):
        sla.policy(SETTINGS, "low")


def test_calendars_are_built_from_settings_and_24x7_always_exists():
    cals = sla.calendars(SETTINGS)
    assert isinstance(cals["business"], BusinessHours) and isinstance(cals["24x7"], AlwaysOn)


@pytest.mark.parametrize("cal, opened, target_h, due, warn", [
    # 80 % of 4 business hours is 3h12m
    (CN, at(3, 2, 9), 4, at(3, 2, 13), at(3, 2, 12, 12)),
    # opened on Friday evening: due on Monday, the warning too
    (CN, at(3, 6, 17), 4, at(3, 9, 12), at(3, 9, 11, 12)),
    # from the make-up Saturday over the whole Spring Festival
    (CN, at(2, 14, 16), 4, at(2, 24, 11), at(2, 24, 10, 12)),
    # 24x7 ignores weekends and festivals
    (ALWAYS, at(2, 14, 14), 4, at(2, 14, 18), at(2, 14, 17, 12)),
])
def test_a_started_clock_is_due_on_its_calendar(cal, opened, target_h, due, warn):
    clock = sla.start(target_h * H, opened, cal, 0.8)
    assert (clock["due_at"], clock["warn_at"]) == (due, warn)
    assert sla.next_check({"resolution": clock}) == warn


@pytest.mark.parametrize("cal, target_h, pauses, due", [
    # pending on the customer from 10:00 Monday to 09:00 Tuesday: 1h consumed, 3h left
    (CN, 4, [(at(3, 2, 10), at(3, 3, 9))], at(3, 3, 12)),
    # a pause that lies entirely outside business hours changes nothing
    (CN, 12, [(at(3, 2, 19), at(3, 3, 8))], at(3, 3, 12)),
    # two pauses of one business hour each
    (CN, 4, [(at(3, 2, 10), at(3, 2, 11)), (at(3, 2, 12), at(3, 2, 13))], at(3, 2, 15)),
    # a pause from Friday to the make-up Saturday before the Spring Festival
    (CN, 12, [(at(2, 13, 10), at(2, 14, 9))], at(2, 24, 11)),
    # a pause of two days on 24x7 moves the due time by its whole length
    (ALWAYS, 4, [(at(3, 2, 10), at(3, 4, 10))], at(3, 4, 13)),
])
def test_pauses_move_the_due_time_by_the_working_time_they_last(cal, target_h, pauses, due):
    opened = pauses[0][0].astimezone(SH).replace(hour=9).astimezone(dt.UTC)
    clock = sla.start(target_h * H, opened, cal, 0.5)
    for paused, resumed in pauses:
        clock = sla.pause(clock, paused, cal)
        assert (clock["since"], clock["due_at"], clock["warn_at"]) == (None, None, None)
        assert sla.next_check({"c": clock}) is None
        assert sla.due({"resolution": clock}, resumed)[1] == []  # paused clocks never fire
        clock = sla.resume(clock, resumed, cal, 0.5)
    assert clock["due_at"] == due


def test_warning_then_breach_each_once():
    clock = sla.start(4 * H, at(3, 2, 9), CN, 0.8)
    clocks = {"first_response": clock}
    clocks, fired = sla.due(clocks, at(3, 2, 12))
    assert fired == []
    clocks, fired = sla.due(clocks, at(3, 2, 12, 30))
    assert fired == [("first_response", "warning", at(3, 2, 13))]
    assert sla.next_check(clocks) == at(3, 2, 13)
    assert sla.due(clocks, at(3, 2, 12, 40))[1] == []
    clocks, fired = sla.due(clocks, at(3, 2, 13))
    assert fired == [("first_response", "breached", at(3, 2, 13))]
    assert sla.next_check(clocks) is None
    assert sla.due(clocks, at(3, 5, 13))[1] == []


def test_a_breach_found_late_reports_its_warning_first():
    clocks = {"resolution": sla.start(H, at(3, 2, 9), CN, 0.8)}
    clocks, fired = sla.due(clocks, at(3, 3, 9))
    assert fired == [("resolution", "warning", at(3, 2, 10)),
                     ("resolution", "breached", at(3, 2, 10))]
    assert clocks["resolution"]["warned"] and sla.due(clocks, at(3, 4, 9))[1] == []


def test_a_warned_clock_paused_and_resumed_does_not_warn_again():
    clocks = {"resolution": sla.start(4 * H, at(3, 2, 9), CN, 0.5)}
    clocks, fired = sla.due(clocks, at(3, 2, 11))
    assert [f[1] for f in fired] == ["warning"]
    clock = sla.resume(sla.pause(clocks["resolution"], at(3, 2, 11), CN), at(3, 3, 9), CN, 0.5)
    assert clock["warn_at"] is None and clock["due_at"] == at(3, 3, 11)
    assert sla.next_check({"resolution": clock}) == at(3, 3, 11)


def test_stop_met_and_restart():
    clock = sla.start(4 * H, at(3, 2, 9), CN, 0.8)
    done = sla.stop(clock, at(3, 2, 11), CN)
    assert (done["consumed"], done["stopped_at"], sla.met(done)) == (2 * H, at(3, 2, 11), True)
    assert sla.stop(done, at(3, 2, 12), CN) == done
    assert sla.resume(done, at(3, 2, 12), CN, 0.8) == done  # stopped clocks stay stopped
    again = sla.restart(done, at(3, 3, 9), CN, 0.8)
    assert again["due_at"] == at(3, 3, 11) and sla.met(again) is None
    late = sla.stop(again, at(3, 3, 12), CN)
    assert late["consumed"] == 5 * H and sla.met(late) is False
    assert sla.consumed(again, at(3, 3, 10), CN) == 3 * H
