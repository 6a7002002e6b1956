"""Polling with a deadline: tests wait for what must happen, never for a fixed time."""
import time

import eventlet


def wait_for(predicate, timeout=15.0, interval=0.05):
    """Return the first truthy value of `predicate()`, or its last value at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        eventlet.sleep(interval)
    return predicate()
