"""OpenAPI 3 document built from the service's own `http` entrypoints and their schemas.

It states the rules the schemas enforce (lengths, ranges, enums, patterns, not-blank, the
amount's places per currency, If-Match where a route requires it) so that a request valid
by the document is not refused for its shape; tests/integration/test_openapi_fuzz.py holds
the services to it with schemathesis.
"""
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from kit import money
from kit.fields import NOT_BLANK, CurrencyAmounts, validate_not_blank
from kit.permissions import PUBLIC

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "object", "description": "per-field messages"},
    },
    "required": ["title", "status"],
}

_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


# What kit.preconditions accepts: one version ETag. Routes that answer 428 need it.
IF_MATCH = {"name": "If-Match", "in": "header", "required": True,
            "description": "the ETag of the version you read, e.g. \"3\"",
            "schema": {"type": "string", "pattern": r'^"[0-9]{1,15}"$'}}
# A payment's precondition is its idempotency key instead: a route whose 428 names it.
IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": True,
                   "description": "the same key again is the same request, e.g. the bank's "
                   "reference", "schema": {"type": "string", "minLength": 1, "maxLength": 200,
                                           "pattern": r"\S"}}
WITH_BODY = ("POST", "PUT", "PATCH")


def _schema_ref(schema):
    return schema if isinstance(schema, (type, str)) else type(schema)


def _not_blank(converter, field, **kwargs):
    if validate_not_blank in field.validators and "pattern" not in field.metadata:
        return {"pattern": NOT_BLANK}
    return {}


def _amount_pattern(places):
    digits = len(str(money.MAX_AMOUNT)) - 1
    fraction = rf"(\.[0-9]{{1,{places}}})?" if places else ""
    return rf"^[0-9]{{1,{digits}}}{fraction}$"


def _amounts_by_currency(schema_cls):
    """anyOf: the amount has at most its currency's minor units (JPY none, CNY two, BHD
    three...), or there is no amount."""
    variants = []
    for amount, currency in schema_cls.currency_of.items():
        groups = {}
        for code, places in money.MINOR_UNITS.items():
            groups.setdefault(places, []).append(code)
        variants += [{"required": [amount, currency], "properties": {
            currency: {"type": "string", "enum": sorted(codes)},
            amount: {"type": "string", "pattern": _amount_pattern(places)}}}
            for places, codes in sorted(groups.items())]
        variants += [{"not": {"required": [amount]}},
                     {"properties": {amount: {"nullable": True, "enum": [None]}}}]
        if schema_cls.amount_alone:
            variants.append({"not": {"required": [currency]}})
    return variants


def _null_not_any_object(node):
    """apispec writes a nullable nested schema as anyOf [its $ref, any object or null],
    which says any object is valid; make the second branch null only."""
    if isinstance(node, dict):
        any_of = node.get("anyOf")
        if (isinstance(any_of, list) and len(any_of) == 2 and "$ref" in any_of[0]
                and any_of[1] == {"type": "object", "nullable": True}):
            any_of[1] = {"type": "object", "nullable": True, "enum": [None]}
        for value in node.values():
            _null_not_any_object(value)
    elif isinstance(node, list):
        for value in node:
            _null_not_any_object(value)


def build_spec(service_name, entrypoints, version="1.0.0"):
    spec = APISpec(
        title=f"Dealflow {service_name}",
        version=version,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
    )
    plugin = spec.plugins[0]
    plugin.converter.add_attribute_function(_not_blank)
    spec.components.schema("Problem", PROBLEM_SCHEMA)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer",
                                               "bearerFormat": "JWT"})
    problem = {"description": "Problem", "content": {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    paths = {}
    for ep in sorted(entrypoints, key=lambda e: (e.url, e.method)):
        path = _PARAM.sub(r"{\1}", ep.url)
        ops = paths.setdefault(path, {})
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in _PARAM.findall(ep.url)]
        if 428 in ep.extra_responses:
            params.append(IDEMPOTENCY_KEY if "Idempotency-Key" in ep.extra_responses[428]
                          else IF_MATCH)
        for method in ep.method.split(","):
            op = {"operationId": f"{ep.method_name}", "responses": {}}
            if ep.summary:
                op["summary"] = ep.summary
            if ep.tags:
                op["tags"] = list(ep.tags)
            if params:
                op["parameters"] = list(params)
            if ep.query_schema is not None:
                op.setdefault("parameters", []).append(
                    {"in": "query", "schema": _schema_ref(ep.query_schema)})
            if ep.body_schema is not None:
                op["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": _schema_ref(ep.body_schema)}}}
            ok = {"description": "OK"}
            if ep.response_content:
                ok["content"] = {ep.response_content: {"schema": {"type": "string"}}}
            elif ep.response_schema is not None:
                ok["content"] = {"application/json": {"schema": _schema_ref(ep.response_schema)}}
            op["responses"][str(ep.success_status)] = ok
            # every route needs a token but those the permission matrix makes public
            if getattr(ep, "rule", None) == PUBLIC:
                op["security"] = []
            else:
                op["security"] = [{"bearer": []}]
                op["responses"]["401"] = {**problem, "description": "No valid bearer token"}
                op["responses"].setdefault("403", {**problem, "description":
                                                   "Your roles may not call this route"})
            for status, description in ep.extra_responses.items():
                op["responses"][str(status)] = {**problem, "description": description}
            if (ep.body_schema is not None or ep.query_schema is not None
                    or method.upper() in WITH_BODY):
                op["responses"].setdefault("400", {**problem, "description": "Invalid input"})
            if method.upper() in WITH_BODY:
                op["responses"].setdefault("413", {**problem, "description": "Body too large"})
            # the server's URL limit (kit.http) holds for every route, e.g. an over-long token
            op["responses"].setdefault("414", {**problem, "description": "URL too long"})
            op["responses"].setdefault("503", {**problem, "description": "Dependency down"})
            ops[method.lower()] = op
    for path, ops in paths.items():
        spec.path(path=path, operations=ops)
    doc = spec.to_dict()
    _null_not_any_object(doc)
    for ep in entrypoints:
        body = _schema_ref(ep.body_schema) if ep.body_schema is not None else None
        if isinstance(body, type) and issubclass(body, CurrencyAmounts):
            name = plugin.converter.schema_name_resolver(body)
            doc["components"]["schemas"][name]["anyOf"] = _amounts_by_currency(body)
    return doc
