"""A subscription's secrets, rotation and event filter, and what an attempt writes."""
import datetime as dt
import uuid

import pytest

from webhooks import deliveries, schedule, subscriptions
from webhooks.signing import message_id

T0 = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
POLICY = schedule.RetryPolicy.from_config({
    "first_delay_seconds": 5, "factor": 2, "max_delay_seconds": 3600,
    "give_up_after_hours": 24, "disable_after_failures": 50, "disable_after_hours": 72})


def _sub(**changes):
    sub = subscriptions.new_subscription(str(uuid.uuid4()), {
        "url": "https://hooks.example.com/x", "event_types": ["deal.won"]}, "s1", T0)
    return {**sub, **changes}


def _event(etype="deal.won", seq=3):
    return {"id": "ev-1", "type": etype, "subject": "d-1", "dealflowsequence": seq,
            "time": "2026-11-27T12:00:00.000Z"}


def test_a_rotation_keeps_the_old_secret_signing_for_the_grace_period():
    sub = _sub()
    secrets, until = subscriptions.rotated(sub, "s2", T0, HOUR)
    assert until == T0 + HOUR
    rotated = {**sub, "secrets": secrets}
    assert subscriptions.secrets_in_force(rotated, T0) == ["s2", "s1"]
    assert subscriptions.secrets_in_force(rotated, T0 + HOUR) == ["s2"]


def test_a_second_rotation_never_extends_an_older_secret_and_drops_expired_ones():
    sub = _sub()
    secrets, _ = subscriptions.rotated(sub, "s2", T0, HOUR)
    secrets, _ = subscriptions.rotated({**sub, "secrets": secrets}, "s3",
                                       T0 + 30 * dt.timedelta(minutes=1), 24 * HOUR)
    assert [(s["secret"], s["expires_at"]) for s in secrets] == [
        ("s3", None), ("s2", T0 + 30 * dt.timedelta(minutes=1) + 24 * HOUR), ("s1", T0 + HOUR)]
    secrets, until = subscriptions.rotated({**sub, "secrets": secrets}, "s4", T0 + 2 * HOUR,
                                           dt.timedelta(0))
    assert [s["secret"] for s in secrets] == ["s4"] and until is None


@pytest.mark.parametrize("sub, etype, at, taken", [
    ({}, "deal.won", T0, True),
    ({}, "deal.lost", T0, False),
    ({}, "deal.won", T0 - dt.timedelta(seconds=1), False),  # before it existed
    ({"enabled": False}, "deal.won", T0, False),
    # turned on again later: what happened while it was off is not queued
    ({"enabled_at": T0 + HOUR}, "deal.won", T0 + dt.timedelta(minutes=30), False),
    ({"enabled_at": T0 + HOUR}, "deal.won", T0 + HOUR, True),
])
def test_which_events_a_subscription_takes(sub, etype, at, taken):
    assert subscriptions.takes(_sub(**sub), _event(etype), at) is taken


def test_the_view_never_shows_secrets():
    shown = subscriptions.view(_sub(), T0)
    assert "secrets" not in shown and shown["secrets_in_force"] == 1


def test_turning_off_emits_the_run_that_caused_it():
    sub = _sub(failures_in_a_row=50, failing_since=T0)
    fields, (etype, data) = subscriptions.disabled(sub, "50 failed attempts in a row", T0 + HOUR,
                                                   automatic=True)
    assert fields["enabled"] is False and etype == "webhook.subscription_disabled"
    assert data == {"subscription_id": sub["_id"], "reason": "50 failed attempts in a row",
                    "automatic": True, "failures_in_a_row": 50, "failing_since": T0,
                    "disabled_at": T0 + HOUR}


def test_a_delivery_is_keyed_by_subscription_and_event():
    sub = _sub()
    doc = deliveries.new_delivery(sub, _event(), "{}", T0)
    assert doc["_id"] == message_id(sub["_id"], "ev-1")
    assert (doc["status"], doc["queue"], doc["due_at"], doc["sequence"]) == \
        ("pending", sub["_id"], T0, 3)


@pytest.mark.parametrize("status, attempts, first, verdict, state", [
    (200, 0, None, schedule.DELIVERED, "delivered"),
    (503, 0, None, schedule.RETRY, "pending"),
    (None, 3, T0, schedule.RETRY, "pending"),
    (503, 30, T0 - 24 * HOUR, deliveries.FAILED, "failed"),
    (410, 0, None, schedule.GONE, "failed"),
])
def test_what_an_attempt_writes(status, attempts, first, verdict, state):
    doc = {"attempts": attempts, "first_attempt_at": first}
    got, sets, unset, entry = deliveries.after_attempt(doc, status, "x", 0.1, T0, POLICY)
    assert got == verdict and entry["outcome"] == verdict
    assert sets.get("status", "pending") == state
    assert sets["first_attempt_at"] == (first or T0)
    if state == "pending":
        assert sets["due_at"] > T0 and "queue" not in unset
    else:
        assert {"queue", "due_at"} <= set(unset)
