"""Graceful shutdown on SIGTERM (DESIGN "Draining").

`nameko run` stops the container at once on SIGTERM: its web server keeps accepting until
the very end and then kills the connections it still holds, and the outbox relay closes
with events of finished writes still in their outboxes. Here SIGTERM instead

1. drains: new requests get a clean 503 (problem+json, Retry-After) and /readyz fails,
   while the listener stays open for `SHUTDOWN.drain_seconds` (a load balancer that has
   not seen the readiness change yet still gets an answer, not a refusal);
2. closes the listener and waits for the requests in flight to be answered (and for
   the connections it accepted meanwhile to get their 503);
3. stops the container the nameko way: entrypoints (no more deliveries or timers), then
   the workers still running finish, then the store flushes this instance's outbox
   (kit.mongo) within `SHUTDOWN.grace_seconds`; the process then exits 0.

Only `nameko run`'s own SIGTERM handler is replaced: a container in a test process keeps
whatever handler that process has.
"""
import logging
import signal
import time

import eventlet

from kit.config import setting

log = logging.getLogger(__name__)


def is_nameko_run_handler(handler):
    return getattr(handler, "__module__", None) == "nameko.cli.run"


class GracefulShutdown:
    def __init__(self, container, server):
        self.container = container
        self.server = server
        config = container.config
        self.drain_seconds = float(setting(config, "SHUTDOWN.drain_seconds", 1))
        self.grace_seconds = float(setting(config, "SHUTDOWN.grace_seconds", 10))
        self.started = False

    def install(self):
        if is_nameko_run_handler(signal.getsignal(signal.SIGTERM)):
            signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum, frame):
        # a signal handler runs in the hub's main loop: no eventlet waits here
        if not self.started:
            self.started = True
            eventlet.spawn_n(self.run)

    def run(self):
        log.info("SIGTERM: draining for %.1fs, then stopping", self.drain_seconds)
        self.server.drain()
        eventlet.sleep(self.drain_seconds)
        self.server.close_listener()
        deadline = time.monotonic() + self.grace_seconds
        while self.server.busy() and time.monotonic() < deadline:
            eventlet.sleep(0.05)
        if self.server.busy():
            log.warning("%d requests still in flight after the grace period",
                        self.server.busy())
        self.container.stop()
        log.info("stopped gracefully")
