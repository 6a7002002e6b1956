"""Operational endpoints every service serves: /healthz, /readyz, /metrics, /openapi.json."""
import time

from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from kit.amqp import broker_reachable
from kit.errors import Unavailable
from kit.http import HttpEntrypoint, http
from kit.mongo import Store
from kit.openapi import build_spec
from kit.prom import CONTENT_TYPE, PromRegistry


class Operations(DependencyProvider):
    prom = PromRegistry()

    def setup(self):
        self.amqp_uri = self.container.config.get("AMQP_URI")
        self._broker_ok = (0.0, False)
        self._spec = None

    def _broker(self):
        stamp, ok = self._broker_ok
        if time.monotonic() - stamp > 1.0:
            ok = broker_reachable(self.amqp_uri)
            self._broker_ok = (time.monotonic(), ok)
        return ok

    def readiness(self):
        checks = {}
        for dep in self.container.dependencies:
            if isinstance(dep, Store):
                try:
                    dep.store.ping()
                    checks["mongodb"] = "ok"
                except Exception as exc:  # noqa: BLE001 - report, never raise
                    checks["mongodb"] = f"unreachable: {type(exc).__name__}"
        checks["amqp"] = "ok" if self._broker() else "unreachable"
        return checks

    def openapi(self):
        if self._spec is None:
            entrypoints = [e for e in self.container.entrypoints
                           if isinstance(e, HttpEntrypoint)]
            self._spec = build_spec(self.container.service_name, entrypoints)
        return self._spec

    def get_dependency(self, worker_ctx):
        return self


class Operational:
    """Mix into a service class to serve the operational endpoints."""

    ops = Operations()

    @http("GET", "/healthz", summary="Liveness", tags=["operations"])
    def healthz(self, request):
        return {"status": "ok"}

    @http("GET", "/readyz", summary="Readiness: MongoDB and AMQP reachable",
          tags=["operations"], responses={503: "A dependency is unreachable"})
    def readyz(self, request):
        checks = self.ops.readiness()
        if any(v != "ok" for v in checks.values()):
            raise Unavailable("Not ready.", checks=checks)
        return {"status": "ready", "checks": checks}

    @http("GET", "/metrics", summary="Prometheus metrics", tags=["operations"],
          content="text/plain")
    def metrics(self, request):
        return Response(self.ops.prom.exposition(), content_type=CONTENT_TYPE)

    @http("GET", "/openapi.json", summary="This document", tags=["operations"])
    def openapi(self, request):
        return self.ops.openapi()
