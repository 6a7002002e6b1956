"""Writing an attempt's outcome under a timer's claim (kit.timers' atomic claims move an
item's due time one lease ahead): the write is tried again while the database is away,
until shortly before the lease ends. Something that went out (a mail, a webhook) is sent
again only when its outcome could not be written within the lease (a crash, or an outage
longer than it), not after every short database outage.

The outcome write must end the claim (match on the claim, or on the due time it set), so a
write that landed but whose answer was lost matches nothing the second time.
"""
import datetime as dt
import logging

import eventlet
from pymongo.errors import ConnectionFailure

log = logging.getLogger(__name__)

FIRST_PAUSE, LONGEST_PAUSE = 0.1, 2.0  # seconds between tries, doubling
MARGIN = 5.0  # seconds before the lease ends when the last try starts, at most


def write_within_lease(write, claimed_at, lease_seconds, *, clock, sleep=eventlet.sleep,
                       what="outcome"):
    """write()'s result, tried again with backoff while the database refuses
    (ConnectionFailure) until the next try would start within `margin(lease_seconds)` of
    the lease's end; then its ConnectionFailure is raised. `clock` gives aware UTC
    datetimes, as `claimed_at` is."""
    deadline = claimed_at + dt.timedelta(seconds=lease_seconds - margin(lease_seconds))
    pause = FIRST_PAUSE
    while True:
        try:
            return write()
        except ConnectionFailure as exc:
            if clock() + dt.timedelta(seconds=pause) >= deadline:
                raise
            log.warning("%s not written yet (%s), again in %.1f s", what, exc, pause)
            sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)


def margin(lease_seconds):
    """How long before the lease ends the tries stop: a write still in flight then should
    land before another instance may claim the item (a short lease keeps a quarter)."""
    return min(MARGIN, lease_seconds / 4)
