"""Helpers shared by the support integration tests."""
from support.service import SupportService
from tests.support.wait import wait_for  # noqa: F401 - shared with the support tests

# kit.links refuses to start without a key
LINKS = {"LINKS": {"keys": "t1=" + "k" * 40}}


def support_config(make_config, **overrides):
    return make_config("support", **LINKS, **overrides)


AGENTS = {"SUPPORT": {"agents": [
    {"id": "ann", "skills": ["billing"], "capacity": 2},
    {"id": "bob", "skills": ["billing", "hardware"], "capacity": 1},
], "dispatch_interval_seconds": 0.2}}


def start_support(container_factory, config):
    container = container_factory(SupportService, config)
    container.start()
    return container


def store_of(container):
    return next(d for d in container.dependencies if d.attr_name == "store").store


def ticket_body(**fields):
    return {"account": "Acme", "subject": "Invoice wrong", "channel": "email",
            "priority": "normal", "category": "billing",
            "contact": {"name": "Li Lei", "email": "li@example.test"}, **fields}


def open_ticket(http, **fields):
    resp = http.post("/api/v1/tickets", json=ticket_body(**fields))
    assert resp.status_code == 201, resp.text
    return resp.json()


def move(http, ticket, status, **body):
    return http.post(f"/api/v1/tickets/{ticket['id']}/status", json={"status": status, **body})
