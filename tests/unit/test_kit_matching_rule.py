"""kit.http.MatchingRule: the services' routes match and build URLs exactly as werkzeug's
own rules do; only the compiling of the URL builders waits for the first URL built."""
import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from kit.http import MatchingRule

ROUTES = [("/api/v1/leads", "GET,POST"), ("/api/v1/leads/<id>", "GET"),
          ("/api/v1/leads/<id>/convert", "POST"), ("/api/v1/forms/<form_key>/leads", "OPTIONS"),
          ("/api/v1/items/<int:n>", "GET"), ("/files/<path:rest>", "GET")]


def _adapter(rule_cls):
    return Map([rule_cls(url, methods=methods.split(","), endpoint=url)
                for url, methods in ROUTES]).bind("example.com")


@pytest.mark.parametrize("path, method", [
    ("/api/v1/leads", "POST"), ("/api/v1/leads/42", "GET"), ("/api/v1/leads/42/convert", "POST"),
    ("/api/v1/forms/web/leads", "OPTIONS"), ("/api/v1/items/7", "GET"), ("/files/a/b.txt", "GET"),
    ("/api/v1/items/x", "GET"), ("/api/v1/leads/42", "DELETE"), ("/nowhere", "GET"),
])
def test_a_request_matches_as_with_werkzeugs_rules(path, method):
    def outcome(rule_cls):
        try:
            return _adapter(rule_cls).match(path, method)
        except (NotFound, MethodNotAllowed) as exc:
            return type(exc), getattr(exc, "valid_methods", None)

    assert outcome(MatchingRule) == outcome(Rule)


@pytest.mark.parametrize("endpoint, values", [
    ("/api/v1/leads/<id>", {"id": "a b"}), ("/api/v1/leads/<id>/convert", {"id": "42", "q": "1"}),
    ("/api/v1/items/<int:n>", {"n": 3}), ("/files/<path:rest>", {"rest": "a/b.txt"}),
])
def test_a_url_is_built_as_with_werkzeugs_rules(endpoint, values):
    adapter = _adapter(MatchingRule)
    first = adapter.build(endpoint, values)
    assert first == _adapter(Rule).build(endpoint, values)
    assert adapter.build(endpoint, values) == first  # the builder compiled once, kept
