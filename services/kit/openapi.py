"""OpenAPI 3 document built from the service's own `http` entrypoints and their schemas."""
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

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


def _schema_ref(schema):
    return schema if isinstance(schema, (type, str)) else type(schema)


def build_spec(service_name, entrypoints, version="1.0.0"):
    spec = APISpec(
        title=f"Dealflow {service_name}",
        version=version,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
    )
    spec.components.schema("Problem", PROBLEM_SCHEMA)
    problem = {"description": "Problem", "content": {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    paths = {}
    for ep in sorted(entrypoints, key=lambda e: (e.url, e.method)):
        path = _PARAM.sub(r"{\1}", ep.url)
        ops = paths.setdefault(path, {})
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in _PARAM.findall(ep.url)]
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
            for status, description in ep.extra_responses.items():
                op["responses"][str(status)] = {**problem, "description": description}
            if ep.body_schema is not None or ep.query_schema is not None:
                op["responses"].setdefault("400", {**problem, "description": "Invalid input"})
            op["responses"].setdefault("503", {**problem, "description": "Dependency down"})
            ops[method.lower()] = op
    for path, ops in paths.items():
        spec.path(path=path, operations=ops)
    return spec.to_dict()
