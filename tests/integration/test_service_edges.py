"""The kit's input limits and contract fields, through the real services over HTTP: each
edge input gets a 4xx problem that names the field, never a 500, and writes nothing."""
import json
import socket

import pytest

from deals.service import DealsService
from leads.service import LeadsService
from metrics.service import MetricsService
from quotes.service import QuotesService
from support.service import SupportService
from tests.support import tokens
from webhooks.service import WebhooksService

PROBLEM = "application/problem+json"
LEAD = {"name": "Ada", "email": "ada@example.com"}
MB = 1024 * 1024
SERVICES = {"leads": LeadsService, "deals": DealsService, "quotes": QuotesService,
            "support": SupportService, "webhooks": WebhooksService}
# what each service needs to start (kit.links and webhooks' sender refuse to without it)
NEEDS = {"quotes": {"LINKS": {"keys": "t1=" + "k" * 40}},
         "support": {"LINKS": {"keys": "t1=" + "k" * 40}},
         "webhooks": {"WEBHOOKS": {"allow": ["127.0.0.1"], "development": True}}}


@pytest.fixture
def service(container_factory, make_config, api):
    def start(name, cls=None):
        config = make_config(name, **NEEDS.get(name, {}))
        container_factory(cls or SERVICES[name], config).start()
        return api(config)
    return start


@pytest.fixture
def leads(service):
    return service("leads", LeadsService)


@pytest.fixture
def deals(service):
    return service("deals", DealsService)


def post_raw(client, path, body):
    return client.post(path, data=body, headers={"Content-Type": "application/json"})


def test_a_20_mb_lead_is_413_not_bson_too_large(leads, mongo_db):
    body = '{"name": "big", "custom": {"x": "' + "x" * (20 * MB) + '"}}'
    resp = post_raw(leads, "/api/v1/leads", body)
    assert (resp.status_code, resp.headers["Content-Type"]) == (413, PROBLEM)
    assert mongo_db.leads.count_documents({}) == 0


@pytest.mark.parametrize("path, body, errors", [
    ("/api/v1/leads", '{"name": "n", "custom": {"big": 9223372036854775808}}',
     {"custom": {"big": ["Integers must lie between -2^63 and 2^63-1."]}}),
    ("/api/v1/leads", '{"name": "n", "custom": {"x": "' + "x" * 2000 + '"}}',
     {"custom": {"x": ["At most 1000 characters."]}}),
    ("/api/v1/leads", '{"name": "n", "phone": "12345", "country": "CN"}',
     {"phone": ["Not a valid phone number: Not a valid phone number."]}),
    ("/api/v1/leads", '{"name": "n", "email": " "}', {"email": ["Not a valid email address."]}),
])
def test_edge_leads_are_400_naming_the_field_and_write_nothing(leads, mongo_db, path, body,
                                                               errors):
    resp = post_raw(leads, path, body)
    assert (resp.status_code, resp.headers["Content-Type"]) == (400, PROBLEM)
    assert resp.json()["errors"] == errors
    assert mongo_db.leads.count_documents({}) == 0


@pytest.mark.parametrize("body, errors", [
    ({"type": "call", "at": "2026-12-01T10:00:00"},
     {"at": ["Give a time zone offset, e.g. 2026-12-01T10:00:00+08:00."]}),
    ({"type": "call", "duration_minutes": 1.5}, {"duration_minutes": ["Not a valid integer."]}),
    ({"type": "call", "at": "0001-01-01T00:00:00+08:00"},
     {"at": ["Out of range: in UTC this time falls before year 1 or after year 9999."]}),
])
def test_edge_activities_are_400_naming_the_field(leads, body, errors):
    lead_id = leads.post("/api/v1/leads", json=LEAD).json()["id"]
    resp = leads.post(f"/api/v1/leads/{lead_id}/activities", json=body)
    assert (resp.status_code, resp.json()["errors"]) == (400, errors)
    assert leads.get(f"/api/v1/leads/{lead_id}").json()["contacted_at"] is None


@pytest.mark.parametrize("query, detail", [
    ("limit=abc", "Invalid query parameters: limit."),
    ("colour=red", "Invalid query parameters: colour."),
    ("created_from=2026-12-01T10:00:00", "Invalid query parameters: created_from."),
])
def test_query_errors_say_query_parameter(leads, query, detail):
    resp = leads.get(f"/api/v1/leads?{query}")
    assert (resp.status_code, resp.json()["detail"]) == (400, detail)


def get_raw(client, target):
    """(status, body) of a GET whose request line carries `target` as raw bytes, which
    HTTP clients would percent-encode."""
    host, port = client.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n"
                     b"Authorization: " + tokens.bearer()["Authorization"].encode() +
                     b"\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize("target", [b"/api/v1/leads?limit=\xff",
                                    b"/api/v1/leads?owner_id=caf\xe9",
                                    b"/api/v1/leads/x?on_duplicate=\xc3"])
def test_a_query_string_that_is_not_utf8_is_400(leads, target):
    status, body = get_raw(leads, target)
    assert status == 400, body
    assert json.loads(body)["detail"].startswith("The query string holds bytes that are not")


@pytest.mark.parametrize("body, errors", [
    ({"amount": "1e30", "currency": "EUR"},
     {"amount": ['Write amounts without an exponent: "100000", not "1e5".']}),
    ({"amount": "100.5", "currency": "JPY"}, {"amount": ["JPY amounts have no decimal places."]}),
    ({"amount": "0.001", "currency": "CNY"},
     {"amount": ["CNY amounts have at most 2 decimal places."]}),
    ({"amount": "10", "currency": "XXX"},
     {"currency": ["Not an ISO 4217 code of a tender currency."]}),
    ({"custom": {"x": "y" * 1001}}, {"custom": {"x": ["At most 1000 characters."]}}),
])
def test_edge_deals_are_400_naming_the_field_and_write_nothing(deals, mongo_db, body, errors):
    resp = deals.post("/api/v1/deals", json={"name": "Acme", **body})
    assert (resp.status_code, resp.json()["errors"]) == (400, errors)
    assert mongo_db.deals.count_documents({}) == 0


def test_amounts_come_back_canonical_with_unicode_custom_keys(deals):
    resp = deals.post("/api/v1/deals", json={"name": "Acme", "amount": "100.5",
                                             "currency": "CNY", "custom": {"行业": "制造"}})
    assert resp.status_code == 201, resp.text
    got = deals.get(f"/api/v1/deals/{resp.json()['id']}").json()
    assert (got["amount"], got["custom"]) == ("100.50", {"行业": "制造"})


def test_funnel_times_need_an_offset(service):
    metrics = service("metrics", MetricsService)
    resp = metrics.get("/api/v1/funnel?from=2026-12-01T10:00:00")
    assert (resp.status_code, resp.json()["errors"]) == (400, {
        "from": ["Give a time zone offset, e.g. 2026-12-01T10:00:00+08:00."]})
    # an unencoded '+' arrives as a space; it is read as the offset it was meant to be
    ok = metrics.get("/api/v1/funnel?from=2026-12-01T10:00:00+08:00&to=2026-12-02T10:00:00Z")
    assert ok.status_code == 200, ok.text
    assert ok.json()["from"] == "2026-12-01T02:00:00.000Z"


OUT_OF_RANGE = "Out of range: in UTC this time falls before year 1 or after year 9999."


@pytest.mark.parametrize("suffix, body, field, collection", [
    ("/tasks", {"title": "call", "due_at": "9999-12-31T23:59:59-08:00"}, "due_at", "tasks"),
    ("/tasks", {"title": "call", "due_at": "0001-01-01T00:00:00+08:00"}, "due_at", "tasks"),
    ("/activities", {"type": "call", "at": "0001-01-01T00:00:00+08:00"}, "at", "activities"),
    ("/activities", {"type": "call", "at": "9999-12-31T23:59:59-08:00"}, "at", "activities"),
])
def test_deal_times_past_the_years_in_utc_are_400_naming_the_field(deals, mongo_db, suffix,
                                                                  body, field, collection):
    deal_id = deals.post("/api/v1/deals", json={"name": "Acme"}).json()["id"]
    resp = deals.post(f"/api/v1/deals/{deal_id}{suffix}", json=body)
    assert (resp.status_code, resp.headers["Content-Type"]) == (400, PROBLEM), resp.text
    assert resp.json()["errors"] == {field: [OUT_OF_RANGE]}
    assert mongo_db[collection].count_documents({}) == 0


@pytest.mark.parametrize("suffix, body", [
    ("/tasks", {"title": "call", "due_at": "9999-12-31T23:59:59Z"}),
    ("/tasks", {"title": "call", "due_at": "0001-01-01T00:00:00Z"}),
    ("/activities", {"type": "call", "at": "9999-12-31T23:59:59Z"}),  # no stall date after it
    ("/activities", {"type": "call", "at": "0001-01-01T00:00:00Z"}),
])
def test_deal_times_at_the_ends_of_the_years_are_taken(deals, suffix, body):
    deal_id = deals.post("/api/v1/deals", json={"name": "Acme"}).json()["id"]
    resp = deals.post(f"/api/v1/deals/{deal_id}{suffix}", json=body)
    assert resp.status_code == 201, resp.text
    assert deals.get(f"/api/v1/deals/{deal_id}").status_code == 200


@pytest.mark.parametrize("path, headers, body, field", [
    ("/api/v1/quotes", {}, {"deal_id": "d-1", "currency": "CNY",
                            "lines": [{"product_code": "CLOUD-STD", "quantity": "1"}],
                            "valid_until": "9999-12-31T23:59:59-08:00"}, "valid_until"),
    ("/api/v1/quotes", {}, {"deal_id": "d-1", "currency": "CNY",
                            "lines": [{"product_code": "CLOUD-STD", "quantity": "1"}],
                            "valid_until": "0001-01-01T00:00:00+08:00"}, "valid_until"),
    ("/api/v1/contracts/c-1/payments", {"Idempotency-Key": "k-1"},
     {"amount": "10.00", "method": "cash", "received_at": "0001-01-01T00:00:00+08:00"},
     "received_at"),
])
def test_quote_times_past_the_years_in_utc_are_400_naming_the_field(service, mongo_db, path,
                                                                   headers, body, field):
    quotes = service("quotes")
    resp = quotes.post(path, json=body, headers=headers)
    assert (resp.status_code, resp.headers["Content-Type"]) == (400, PROBLEM), resp.text
    assert resp.json()["errors"] == {field: [OUT_OF_RANGE]}
    assert mongo_db.quotes.count_documents({}) == mongo_db.contracts.count_documents({}) == 0


# A JSON escape spells half of a surrogate pair alone: json.loads keeps it, and pymongo
# cannot encode it as UTF-8 (a 500 in every service before the kit refused it).
LONE = "\\ud800"
NOT_UNICODE = "The body holds text that is not valid Unicode"


@pytest.mark.parametrize("name, path, body, collection", [
    ("leads", "/api/v1/leads", f'{{"name": "Ada {LONE}"}}', "leads"),
    ("leads", "/api/v1/leads", f'{{"name": "Ada", "custom": {{"{LONE}": 1}}}}', "leads"),
    ("deals", "/api/v1/deals", f'{{"name": "{LONE}"}}', "deals"),
    ("quotes", "/api/v1/products",
     f'{{"code": "X-1", "name_zh": "{LONE}", "name_en": "x", "unit": "x", '
     '"prices": {"CNY": "1.00"}, "tax_rate": 6}', "products"),
    ("support", "/api/v1/tickets",
     f'{{"account": "Acme", "subject": "{LONE}", "channel": "email", "priority": "normal", '
     '"category": "billing", "contact": {"name": "Li Lei", "email": "li@example.test"}}',
     "tickets"),
    ("webhooks", "/api/v1/subscriptions",
     f'{{"url": "http://127.0.0.1:1/x", "event_types": ["lead.assigned"], '
     f'"description": "{LONE}"}}', "subscriptions"),
])
def test_a_lone_surrogate_is_400_not_valid_unicode_in_every_service(service, mongo_db, name,
                                                                    path, body, collection):
    client = service(name)
    resp = post_raw(client, path, body.encode())
    assert (resp.status_code, resp.headers["Content-Type"]) == (400, PROBLEM), resp.text
    assert resp.json()["detail"].startswith(NOT_UNICODE)
    assert mongo_db[collection].count_documents({}) == 0


TOO_BIG = '"99999999999999999999999"'


@pytest.mark.parametrize("name, create, change", [
    ("deals", ("post", "/api/v1/deals", {"name": "Acme"}),
     ("patch", "/api/v1/deals/{id}", {"name": "Acme 2"})),
    ("leads", ("post", "/api/v1/leads", LEAD), ("patch", "/api/v1/leads/{id}", {"name": "B"})),
    ("quotes", ("post", "/api/v1/products", {
        "code": "X-1", "name_zh": "x", "name_en": "x", "unit": "x",
        "prices": {"CNY": "1.00"}, "tax_rate": 6}),
        ("put", "/api/v1/products/X-1", {"name_zh": "y", "name_en": "y", "unit": "x",
                                         "prices": {"CNY": "1.00"}, "tax_rate": 6})),
])
def test_an_if_match_past_64_bits_is_409_and_changes_nothing(service, mongo_db, name, create,
                                                             change):
    client = service(name)
    method, path, body = create
    created = getattr(client, method)(path, json=body)
    assert created.status_code == 201, created.text
    method, path, body = change
    path = path.format(id=created.json().get("id"))
    # what the refused change would have written: the relay (its outbox) and the service's
    # own follow-ups (a lead's scoring, its timers) may write other fields meanwhile
    shown = {"version": 1, "name": 1, "name_zh": 1, "name_en": 1}
    stored = {c: list(mongo_db[c].find({}, shown)) for c in ("deals", "leads", "products")}
    resp = getattr(client, method)(path, json=body, headers={"If-Match": TOO_BIG})
    assert (resp.status_code, resp.headers["Content-Type"]) == (409, PROBLEM), resp.text
    assert {c: list(mongo_db[c].find({}, shown)) for c in stored} == stored
