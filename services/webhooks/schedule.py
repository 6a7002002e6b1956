"""When a failed delivery is tried again, when it is given up, and when a subscription that
keeps failing is turned off. Pure: the delivery worker passes the times and counts."""
import datetime as dt
from typing import NamedTuple


class RetryPolicy(NamedTuple):
    first_delay: dt.timedelta
    factor: float
    max_delay: dt.timedelta
    give_up_after: dt.timedelta      # the issue asks for at least 24 hours
    disable_after_failures: int      # a run of failed attempts in a row, across deliveries
    disable_after: dt.timedelta      # ... or failing for this long without a success

    @classmethod
    def from_config(cls, settings):
        return cls(
            first_delay=dt.timedelta(seconds=float(settings["first_delay_seconds"])),
            factor=float(settings["factor"]),
            max_delay=dt.timedelta(seconds=float(settings["max_delay_seconds"])),
            give_up_after=dt.timedelta(hours=float(settings["give_up_after_hours"])),
            disable_after_failures=int(settings["disable_after_failures"]),
            disable_after=dt.timedelta(hours=float(settings["disable_after_hours"])))


DELIVERED, RETRY, GONE = "delivered", "retry", "gone"


def outcome(status):
    """What a receiver's answer means: any 2xx is delivered; 410 Gone asks us to stop
    (the spec's advice: disable the subscription); anything else, redirects included (they
    are not followed: they could lead past the allow-list), and no answer (None) is tried
    again."""
    if status is not None and 200 <= status < 300:
        return DELIVERED
    if status == 410:
        return GONE
    return RETRY


def next_attempt(policy, first_attempt_at, attempts, now):
    """When to try again after `attempts` failed attempts, or None once the delivery has
    been tried for `give_up_after` (it is logged as failed; a redelivery can send it)."""
    if now - first_attempt_at >= policy.give_up_after:
        return None
    return now + min(policy.first_delay * policy.factor ** (attempts - 1), policy.max_delay)


def should_disable(policy, failures_in_a_row, failing_since, now):
    return (failures_in_a_row >= policy.disable_after_failures
            or (failing_since is not None and now - failing_since >= policy.disable_after))
