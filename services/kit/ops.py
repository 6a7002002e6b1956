"""Operational endpoints every service serves: /healthz, /readyz, /metrics, /openapi.json.

They are answered in the web server's own green thread, not by a pooled worker: a liveness
probe or a scrape must answer even while every worker is busy (a backlog of events), or
an orchestrator restarts a healthy pod and the dashboards go blank exactly when they
matter.
"""
import copy
import time

from eventlet.semaphore import Semaphore
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from kit import paging
from kit.amqp import broker_reachable
from kit.audit import AuditPage, AuditQuery, AuditTrail
from kit.errors import Unavailable
from kit.http import HttpEntrypoint, http, query_args
from kit.mongo import Store
from kit.prom import CONTENT_TYPE, PromRegistry
from kit.shutdown import GracefulShutdown


class Operations(DependencyProvider):
    prom = PromRegistry()

    def setup(self):
        self.amqp_uri = self.container.config.get("AMQP_URI")
        self._broker_ok = (0.0, False)
        self._broker_lock = Semaphore()
        self._spec = None
        self.server = next((e.server for e in self.container.entrypoints
                            if isinstance(e, HttpEntrypoint)), None)
        # checked while the container sets up and starts (queues, indexes), so that the
        # first /readyz finds a fresh answer instead of connecting to the broker itself
        self.container.spawn_managed_thread(self._broker, identifier="ops.broker_check")

    def start(self):
        if self.server is not None:
            GracefulShutdown(self.container, self.server).install()

    def _broker(self):
        with self._broker_lock:  # a probe that comes during a check waits for its answer
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
                # a unique index missing would let duplicates in, a query index a scan
                checks["indexes"] = "ok" if dep.indexes_ready else "pending"
        checks["amqp"] = "ok" if self._broker() else "unreachable"
        return checks

    # the four answers, shared by the inline entrypoint and the service methods

    def healthz(self, request):
        return {"status": "ok"}

    def readyz(self, request):
        if self.server is not None and self.server.draining:
            raise Unavailable("Draining: this instance is shutting down.")
        checks = self.readiness()
        if any(v != "ok" for v in checks.values()):
            raise Unavailable("Not ready.", checks=checks)
        return {"status": "ready", "checks": checks}

    def metrics(self, request):
        return Response(self.prom.exposition(), content_type=CONTENT_TYPE)

    def openapi(self, request):
        if self._spec is None:
            # imported here: apispec is needed by this route only, built on first request
            from kit.openapi import build_spec

            entrypoints = [e for e in self.container.entrypoints
                           if isinstance(e, HttpEntrypoint)]
            self._spec = build_spec(self.container.service_name, entrypoints)
        # what the service defines at run time (typed custom fields) goes on a copy
        extend = getattr(self.container.service_cls, "extend_openapi", None)
        if extend is not None:
            return extend(copy.deepcopy(self._spec), self.container)
        return self._spec

    def get_dependency(self, worker_ctx):
        return self


class OpsEndpoint(HttpEntrypoint):
    """An HTTP entrypoint answered by the Operations provider without a worker."""

    def setup(self):
        super().setup()
        self.operations = next(d for d in self.container.dependencies
                               if isinstance(d, Operations))

    def handle_request(self, request):
        started = time.perf_counter()
        request.shallow = False
        try:
            answer = getattr(self.operations, self.method_name)(request)
            response = self.response_from_result(answer)
        except Exception as exc:  # noqa: BLE001 - mapped to problem+json like any route
            response = self.response_from_exception(exc)
        self.prom.observe_request(request.method, self.url, response.status_code,
                                  time.perf_counter() - started)
        return response


ops_http = OpsEndpoint.decorator


class Operational:
    """Mix into a service class to serve the operational endpoints."""

    ops = Operations()
    audit_trail = AuditTrail()

    @ops_http("GET", "/healthz", summary="Liveness", tags=["operations"])
    def healthz(self, request):
        return self.ops.healthz(request)

    @ops_http("GET", "/readyz", summary="Readiness: MongoDB and AMQP reachable, indexes "
                                        "created",
              tags=["operations"], responses={503: "A dependency is unreachable"})
    def readyz(self, request):
        return self.ops.readyz(request)

    @ops_http("GET", "/metrics", summary="Prometheus metrics", tags=["operations"],
              content="text/plain")
    def metrics(self, request):
        return self.ops.metrics(request)

    @ops_http("GET", "/openapi.json", summary="This document", tags=["operations"])
    def openapi(self, request):
        return self.ops.openapi(request)

    @http("GET", "/api/v1/audit", query=AuditQuery, response=AuditPage, tags=["audit"],
          summary="The audit trail of writes, newest first (admins)",
          responses={401: "No valid token", 403: "Not an admin"})
    def read_audit(self, request):
        args = query_args(request, AuditQuery())
        after = paging.after(args["cursor"]) if args.get("cursor") else None
        rows, more = self.audit_trail.page(args["limit"], after)
        return AuditPage().dump({"items": rows,
                                 "next_cursor": paging.next_cursor(rows, more, "at")})
