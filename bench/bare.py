"""Bare nameko services: the anchors that the platform's figures are ratios to.

Nothing of the kit, no database: what nameko itself does on this machine in the same run.
- `BareSource`: a trivial `@http` route (`GET /ok`) and `POST /fire/<n>`, which dispatches
  n events one after another with nameko's `EventDispatcher` (publisher confirms, each
  dispatch waits for its confirm, as nameko always does).
- `BareSink`: an event handler with no I/O that records when each event arrived and how
  long after its dispatch began; `GET /stats` returns them, `POST /reset` forgets them.

Run as processes by bench/raw.py (`nameko run --config bench/bare.yml bench.bare:...`).
"""
import json
import time

from nameko.events import EventDispatcher, event_handler
from nameko.web.handlers import http

# one process per service: a module-level record is the sink's whole state
RECEIVED = []


class BareSource:
    name = "bare_source"

    dispatch = EventDispatcher()

    @http("GET", "/ok")
    def ok(self, request):
        return "ok"

    @http("POST", "/fire/<int:count>")
    def fire(self, request, count):
        for n in range(count):
            self.dispatch("ping", {"n": n, "sent": time.time()})
        return json.dumps({"fired": count})


class BareSink:
    name = "bare_sink"

    @event_handler("bare_source", "ping")
    def on_ping(self, payload):
        now = time.time()
        RECEIVED.append((payload["sent"], now))

    @http("GET", "/stats")
    def stats(self, request):
        return json.dumps(RECEIVED)

    @http("POST", "/reset")
    def reset(self, request):
        RECEIVED.clear()
        return "reset"

    @http("GET", "/ok")
    def ok(self, request):
        return "ok"
