"""The permission matrix, table-driven: every route of every service in the matrix, and
every route × every role answered as the matrix says (403 exactly where the role has no
rule; 401 without a token on every route that is not public)."""
import importlib
from pathlib import Path

import pytest
from nameko.containers import ServiceContainer

from kit.auth import AuthMisconfigured
from kit.http import http
from kit.permissions import PUBLIC, ROLES, MatrixError, collect, markdown, matrix_of, routes_of
from tests.support.tokens import bearer

ROOT = Path(__file__).resolve().parents[2]
# every service with a matrix; a service listed here without one fails
SERVICES = {"leads": "LeadsService", "deals": "DealsService", "metrics": "MetricsService",
            "notify": "NotifyService", "support": "SupportService", "quotes": "QuotesService",
            "webhooks": "WebhooksService"}


def service_class(name):
    return getattr(importlib.import_module(f"{name}.service"), SERVICES[name])


def all_matrices():
    return {name: (routes_of(service_class(name)), matrix_of(service_class(name)))
            for name in SERVICES}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_route_has_a_rule_and_every_rule_a_route(service):
    routes, matrix = all_matrices()[service]
    assert matrix is not None, f"{service} has no permission matrix"
    assert sorted(set(routes) - set(matrix)) == [], "routes without a rule"
    assert sorted(set(matrix) - set(routes)) == [], "rules for routes that do not exist"


def test_docs_permissions_is_current():
    assert set(SERVICES) <= set(collect())
    expected = markdown(collect())
    assert (ROOT / "docs" / "permissions.md").read_text() == expected + "\n", (
        "docs/permissions.md is stale: PYTHONPATH=services python -m kit.permissions "
        "> docs/permissions.md")


def test_a_service_with_a_route_missing_from_its_matrix_does_not_start(make_config):
    leads = service_class("leads")

    class Unruled(leads):
        @http("GET", "/api/v1/unruled")
        def unruled(self, request):
            return {}

    container = ServiceContainer(Unruled, make_config("leads"))
    with pytest.raises(MatrixError, match="unruled"):
        container.start()
    container.kill()


def test_a_service_without_a_usable_key_does_not_start(make_config):
    config = make_config("leads", AUTH={"public_key_file": "/nonexistent/public.pem"})
    container = ServiceContainer(service_class("leads"), config)
    with pytest.raises(AuthMisconfigured, match="Refusing to start"):
        container.start()
    container.kill()


def _path(url):
    return url.replace("<id>", "00000000-0000-0000-0000-000000000000")


def _send(client, method, path):
    if method == "GET":
        return client.get(path)
    return getattr(client, method.lower())(path, json={})


def _cases(service):
    routes, matrix = all_matrices()[service]
    for name, (method, url) in sorted(routes.items()):
        yield name, method, _path(url), matrix[name]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_route_times_every_role(service, container_factory, make_config, api):
    config = make_config(service)
    container_factory(service_class(service), config).start()
    anonymous = api(config, auth={})
    as_role = {role: api(config, auth=bearer(role, sub="ann", team="dach")) for role in ROLES}
    wrong = []
    for name, method, path, rule in _cases(service):
        answer = _send(anonymous, method, path)
        if rule == PUBLIC:
            # a public signed-link route refuses a bogus link (kit.links: 403 with a
            # `kind`), which is no permission refusal
            link_refusal = answer.status_code == 403 and "kind" in answer.json()
            if answer.status_code in (401, 403) and not link_refusal:
                wrong.append(f"{name} without a token: {answer.status_code}, public")
            continue
        if answer.status_code != 401 or "Bearer" not in answer.headers.get(
                "WWW-Authenticate", ""):
            wrong.append(f"{name} without a token: {answer.status_code}")
        for role in ROLES:
            got = _send(as_role[role], method, path).status_code
            if role in rule and got in (401, 403):
                wrong.append(f"{name} as {role}: {got}, the matrix allows it")
            if role not in rule and got != 403:
                wrong.append(f"{name} as {role}: {got}, the matrix forbids it")
    assert wrong == []
