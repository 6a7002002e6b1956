"""The kit's input limits and contract fields, through the real leads, deals and metrics
services over HTTP: each edge input gets a 4xx problem that names the field, never a 500,
and writes nothing."""
import pytest

from deals.service import DealsService
from leads.service import LeadsService
from metrics.service import MetricsService

PROBLEM = "application/problem+json"
LEAD = {"name": "Ada", "email": "ada@example.com"}
MB = 1024 * 1024


@pytest.fixture
def service(container_factory, make_config, api):
    def start(name, cls):
        config = make_config(name)
        container_factory(cls, config).start()
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
