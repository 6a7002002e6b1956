"""HTTP helpers: one entrypoint that speaks JSON and maps every error to RFC 9457 once.

`http(method, url, body=..., response=..., ...)` replaces nameko's `http`; the schemas it is
given also document the route in /openapi.json. Handlers return a dict or list (200), a
`(status, payload)` or `(status, headers, payload)` tuple, or a werkzeug Response.
"""
import base64
import binascii
import json
import logging
import socket
import time
from decimal import Decimal
from functools import partial

import eventlet
from marshmallow import ValidationError
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from pymongo.errors import ConnectionFailure, PyMongoError
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from kit import permissions
from kit.amqp import PublishError
from kit.audit import AuditTrail
from kit.auth import Authenticator
from kit.errors import (
    Conflict,
    DealflowError,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    Retryable,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UriTooLong,
)
from kit.limits import Limits, check_json
from kit.prom import PromRegistry

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
JSON = "application/json"


def _default(value):
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(payload, status=200, headers=None, content_type=JSON):
    body = json.dumps(payload, default=_default, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=status, headers=headers, content_type=content_type)


RESERVED = ("type", "title", "status", "detail", "instance")


def problem(status, title, detail=None, instance=None, extra=None):
    """An RFC 9457 body; `extra` members may not replace the standard ones."""
    payload = {"type": "about:blank", "title": title, "status": status}
    if detail:
        payload["detail"] = detail
    if instance:
        payload["instance"] = instance
    for key, value in (extra or {}).items():
        if key not in RESERVED:
            payload[key] = value
    return json_response(payload, status=status, content_type=PROBLEM)


# The one table of statuses: domain errors carry none, a subclass takes its base's.
STATUS_OF = {
    Invalid: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    UriTooLong: 414,
    PreconditionRequired: 428,
    TooManyRequests: 429,
    Unavailable: 503,
    Retryable: 503,
}


def status_of(exc):
    return next((STATUS_OF[k] for k in type(exc).__mro__ if k in STATUS_OF), 500)


def problem_from_exception(exc, request=None):
    """The one place where exceptions become HTTP statuses."""
    instance = request.path if request is not None else None
    if isinstance(exc, QueryInvalid):
        return problem(400, "Invalid request", "Invalid query parameters: "
                       f"{', '.join(map(str, exc.messages))}.", instance,
                       {"errors": exc.messages})
    if isinstance(exc, ValidationError):
        return problem(400, "Invalid request", "The request body has invalid fields.",
                       instance, {"errors": exc.messages})
    if isinstance(exc, DealflowError):
        response = problem(status_of(exc), exc.title, exc.detail, instance, exc.extra)
        response.headers.update(getattr(exc, "headers", None) or {})
        return response
    if isinstance(exc, HTTPException):
        response = problem(exc.code, exc.name, exc.description, instance)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response
    if isinstance(exc, (ConnectionFailure, PublishError)):
        log.warning("dependency unavailable: %s", exc)
        return problem(503, "Service unavailable",
                       "A dependency (database or broker) is unreachable; retry later.",
                       instance)
    if isinstance(exc, PyMongoError):
        log.error("database error", exc_info=exc)
        return problem(503, "Service unavailable", "The database refused the operation.",
                       instance)
    log.error("unhandled error", exc_info=exc)
    return problem(500, "Internal error", "An unexpected error occurred.", instance)


class QueryInvalid(ValidationError):
    """Invalid query parameters (the problem says so, not "body")."""


def limits_of(request):
    """The limits the server attached to this request (defaults outside a server)."""
    return getattr(request, "limits", None) or Limits()


def read_body(request, limit):
    """The raw body, at most `limit` bytes, else PayloadTooLarge (413): refused before
    reading when Content-Length says more, and while reading a chunked body that runs
    past it. Nothing larger is ever held in memory."""
    cached = getattr(request, "kit_body", None)
    if cached is not None:
        return cached
    too_large = PayloadTooLarge(f"The body is larger than {limit} bytes.", max_bytes=limit)
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    parts, size = [], 0
    while size <= limit:
        part = request.stream.read(min(limit + 1 - size, 65536))
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        raise too_large
    request.kit_body = b"".join(parts)
    return request.kit_body


def _no_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def json_body(request, schema=None, *, partial=False):
    """Parse a JSON body within the limits (numbers as Decimal, never float) and load it
    with `schema`."""
    ctype = (request.mimetype or "").lower()
    if ctype not in (JSON, "") and not ctype.endswith("+json"):
        raise Invalid(f"Expected a JSON body (Content-Type: {JSON}), got {ctype}.")
    limits = limits_of(request)
    raw = read_body(request, limits.max_body_bytes)
    try:
        data = json.loads(raw or b"{}", parse_float=Decimal, parse_constant=_no_constant)
    except RecursionError:
        raise Invalid(f"The body nests deeper than {limits.max_json_depth} levels.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid(f"The body is not valid JSON: {exc}.") from None
    check_json(data, limits.max_json_depth)
    if schema is None:
        return data
    if not isinstance(data, dict) and not getattr(schema, "many", False):
        raise ValidationError({"_schema": ["The body must be a JSON object."]})
    return schema.load(data, partial=partial)


def query_args(request, schema):
    """Load query-string arguments with a schema (400 "Invalid query parameters" with
    per-parameter messages)."""
    try:
        return schema.load(request.args.to_dict())
    except ValidationError as exc:
        raise QueryInvalid(_as_query_messages(exc.messages)) from None


def _as_query_messages(messages):
    if not isinstance(messages, dict):
        return {"_query": messages}
    return {key: ["Unknown query parameter."] if value == ["Unknown field."] else value
            for key, value in messages.items()}


def encode_cursor(values):
    raw = json.dumps(values, default=_default, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor):
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise QueryInvalid({"cursor": ["Not a valid cursor."]}) from None


def _utf8(wsgi_text):
    """Whether a WSGI string (bytes as latin-1, PEP 3333) holds UTF-8 text."""
    if wsgi_text.isascii():
        return True
    try:
        wsgi_text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return False
    return True


class ProblemWsgiApp(WsgiApp):
    """nameko's WsgiApp, except that unmatched routes, wrong methods (with `Allow`) and
    over-long URLs answer problem+json too, never HTML, and every request carries the
    server's limits for the kit's body readers."""

    def __init__(self, server, limits):
        super().__init__(server)
        self.limits = limits

    # answered while draining: the orchestrator's probes and the scrape
    WHILE_DRAINING = ("/healthz", "/readyz", "/metrics")

    def __call__(self, environ, start_response):
        self.server.in_flight += 1
        try:
            return self._answer(environ, start_response)
        finally:
            self.server.in_flight -= 1

    def _answer(self, environ, start_response):
        request = Request(environ, shallow=True)
        request.limits = self.limits
        if self.server.draining and request.path not in self.WHILE_DRAINING:
            response = problem(503, "Service unavailable", "This instance is shutting down; "
                               "retry, another instance answers.", request.path)
            response.headers["Retry-After"] = "1"
            return response(environ, start_response)
        if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            # eventlet ends a chunked body itself but does not say so; without this flag
            # werkzeug reads such a body as empty, with it the reader bounds it
            environ["wsgi.input_terminated"] = True
        uri = len(environ.get("RAW_PATH_INFO") or environ.get("PATH_INFO", "")) + len(
            environ.get("QUERY_STRING", ""))
        if uri > self.limits.max_url_bytes:
            response = problem_from_exception(UriTooLong(
                f"The URL is longer than {self.limits.max_url_bytes} bytes.",
                max_bytes=self.limits.max_url_bytes), request)
            return response(environ, start_response)
        if not _utf8(environ.get("QUERY_STRING", "")):
            # werkzeug decodes a raw (unescaped) byte of the query strictly, %-escapes
            # leniently: request.args raised UnicodeDecodeError, a 500, on the byte 0xFF
            response = problem_from_exception(Invalid(
                "The query string holds bytes that are not UTF-8 text; percent-encode it."),
                request)
            return response(environ, start_response)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
            request.path_values = values
            response = provider.handle_request(request)
        except HTTPException as exc:
            response = problem_from_exception(exc, request)
        return response(environ, start_response)


class ProblemWebServer(WebServer):
    # eventlet answers a bare 414 to request lines past its own limit; ours (problem+json)
    # must come first, so eventlet's is set this many times higher
    EVENTLET_URL_FACTOR = 4

    def __init__(self):
        super().__init__()
        self.draining = False  # kit.shutdown: new requests get a 503, /readyz fails
        self.in_flight = 0
        self.fresh = 0  # connections accepted while draining, each for one 503

    def start(self):
        # nameko's start, but eventlet would listen with SO_REUSEPORT: a second process
        # given this port (a misconfiguration, or a port two starts both picked) would
        # bind it too and silently take part of its requests. It must fail instead.
        if not self._starting:
            self._starting = True
            self._sock = eventlet.listen(self.bind_addr, reuse_port=False)
            self._sock.settimeout(None)  # kombu#838, as nameko does
            self._serv = self.get_wsgi_server(self._sock, self.get_wsgi_app())
            self._gt = self.container.spawn_managed_thread(self.run)

    def drain(self):
        """Answer 503 to new requests and close each connection after its response."""
        self.draining = True
        if self._serv is not None:
            self._serv.keepalive = False

    def close_listener(self):
        """Stop accepting connections (nameko does this only after the workers are done;
        a draining instance does it first, so clients get "connection refused", not a
        reset)."""
        self._is_accepting = False
        if self._gt is not None:
            self._gt.kill()
        if self._sock is None:
            return
        # connections the kernel completed but nobody accepted yet would be reset by the
        # close: accept (and answer) them all, then close with no yield in between
        self._sock.setblocking(False)
        while True:
            try:
                sock, address = self._sock.accept()
            except OSError:  # BlockingIOError: the backlog is empty
                break
            sock.setblocking(True)
            sock.settimeout(self._serv.socket_timeout)
            self.container.spawn_managed_thread(partial(self.process_request, sock, address))
        self._sock.close()

    def get_wsgi_app(self):
        self.limits = Limits.from_config(self.container.config)
        return ProblemWsgiApp(self, self.limits)

    def get_wsgi_server(self, sock, wsgi_app, *args, **kwargs):
        server = super().get_wsgi_server(sock, wsgi_app, *args, **kwargs)
        server.url_length_limit = max(server.url_length_limit,
                                      self.EVENTLET_URL_FACTOR * wsgi_app.limits.max_url_bytes)
        return server

    def process_request(self, sock, address):
        # A response larger than one segment otherwise waits ~40 ms for the client's
        # delayed ACK (Nagle) on a kept-alive connection: /metrics scrapes were 48 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self.draining:
            return super().process_request(sock, address)
        self.fresh += 1
        try:
            return super().process_request(sock, address)
        finally:
            self.fresh -= 1

    def busy(self):
        """Requests being answered, or connections accepted while draining that wait for
        their 503; a kept-alive connection idle since before the drain is not waited for
        (it is closed with the container, as HTTP lets a server close an idle one)."""
        return self.in_flight + self.fresh


class MatchingRule(Rule):
    """A route's rule whose URL builders are compiled when a URL is first built, not when
    the map is made: werkzeug compiles two Python functions per rule for building URLs,
    which the services never do (they match requests), and that was most of the CPU a
    service spent starting its web server."""

    def _compile_builder(self, append_unknown=True):
        compiled = []

        def build(rule, *args, **kwargs):
            if not compiled:
                compiled.append(Rule._compile_builder(rule, append_unknown).__get__(rule))
            return compiled[0](*args, **kwargs)

        return build


class HttpEntrypoint(HttpRequestHandler):
    """Every route is authenticated and its roles checked here, before a worker runs,
    by the service's permission matrix (kit.permissions): the caller lands on the
    request (`request.caller`, read by kit.auth.caller) with its reach (`request.scope`),
    and each write is appended to the audit trail."""

    server = ProblemWebServer()
    prom = PromRegistry()
    authenticator = Authenticator()

    def __init__(self, method, url, *, body=None, response=None, status=200, summary=None,
                 tags=None, query=None, responses=None, content=None, **kwargs):
        self.body_schema = body
        self.response_schema = response
        self.success_status = status
        self.summary = summary
        self.tags = tags
        self.query_schema = query
        self.extra_responses = responses or {}
        self.response_content = content
        kwargs.setdefault("expected_exceptions", (DealflowError, ValidationError))
        super().__init__(method, url, **kwargs)

    def get_url_rule(self):
        return MatchingRule(self.url, methods=self.method.split(","))

    def setup(self):
        super().setup()
        matrix = permissions.matrix_of(self.container.service_cls)
        # a route the matrix lacks stops the service here, not at the first request
        self.rule = None if matrix is None else permissions.rule_for(matrix, self.method_name)
        self.audit = next((d for d in self.container.dependencies
                           if isinstance(d, AuditTrail)), None)

    def admit(self, request):
        """The caller and its reach, or the 401/403 that ends the request."""
        if self.rule == permissions.PUBLIC:
            request.caller, request.scope = None, permissions.EVERYTHING
            return
        who = self.authenticator.authenticate(request)
        request.caller = who
        if self.rule is None:  # a service without a matrix: authenticated, not scoped
            request.scope = permissions.EVERYTHING
            return
        request.scope = permissions.scope_for(who, self.rule)
        if request.scope is None:
            allowed = ", ".join(sorted(self.rule)) or "none"
            raise Forbidden(f"Your roles ({', '.join(who['roles']) or 'none'}) may not call "
                            f"this route; it needs one of: {allowed}.")

    def handle_request(self, request):
        started = time.perf_counter()
        try:
            self.admit(request)
        except DealflowError as exc:
            response = problem_from_exception(exc, request)
        else:
            response = super().handle_request(request)
        if self.audit is not None:
            self.audit.record(request, getattr(request, "caller", None), self.method_name,
                              response.status_code)
        self.prom.observe_request(request.method, self.url, response.status_code,
                                  time.perf_counter() - started)
        return response

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        headers = None
        status = self.success_status
        if isinstance(result, tuple):
            if len(result) == 3:
                status, headers, result = result
            else:
                status, result = result
        if result is None and status == 204:
            return Response(status=204, headers=headers)
        if isinstance(result, (str, bytes)):
            return Response(result, status=status, headers=headers)
        return json_response(result, status=status, headers=headers)

    def response_from_exception(self, exc):
        return problem_from_exception(exc)


http = HttpEntrypoint.decorator
