"""Polling with a deadline: tests wait for what must happen, never for a fixed time."""
import time

import eventlet


def wait_for(predicate, timeout=15.0, interval=0.05, *, ignore=()):
    """Return the first truthy value of `predicate()`, or its last value at the deadline.
    An exception of a type in `ignore` (a server not listening yet) counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except ignore:
            value = None
        if value or time.monotonic() >= deadline:
            return value
        eventlet.sleep(interval)
