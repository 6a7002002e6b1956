"""Helpers shared by the quotes integration tests."""
import datetime as dt
import uuid

from kit.events import new_event
from quotes.service import QuotesService
from tests.integration.deals.deals_support import publish, queue_bound  # noqa: F401
from tests.support import tokens
from tests.support.wait import wait_for  # noqa: F401 - shared with the quotes tests

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
# the tests' customer-link key (kit.links wants 32 characters or more)
LINKS = {"keys": "t1=" + "k" * 40}


def quotes_config(make_config, **overrides):
    return make_config("quotes", LINKS=LINKS, **overrides)


def start_quotes(container_factory, config):
    container = container_factory(QuotesService, config)
    container.start()
    return container


def quotes_with_a_product(container_factory, make_config, api):
    """(Quotes client of a started quotes service whose price book has PRODUCT, config,
    its admin's HTTP client)."""
    config = quotes_config(make_config)
    start_quotes(container_factory, config)
    http = api(config)
    quotes = Quotes(http, config)
    quotes.product()
    return quotes, config, http


def store_of(container):
    return next(d for d in container.dependencies if d.attr_name == "store").store


def token(sub, *roles):
    return tokens.bearer(*roles, sub=sub, team="sales")


def deal_created(deal_id, name="上海云杉科技有限公司", owner_id="rep-1", sequence=1):
    return new_event("deal.created", deal_id, {
        "deal_id": deal_id, "pipeline_id": "default", "stage": "discovery", "name": name,
        "owner_id": owner_id, "amount": None, "currency": None, "probability": 10,
        "expected_close": None, "lead_id": None, "origin": "direct", "created_at": T0},
        sequence)


def deal_lost(deal_id, sequence=3):
    return new_event("deal.lost", deal_id, {
        "deal_id": deal_id, "pipeline_id": "default", "from_stage": "discovery",
        "reason": "budget", "amount": None, "currency": None, "owner_id": "rep-1",
        "created_at": T0, "lost_at": T0 + dt.timedelta(days=2)}, sequence)


def stage_changed(deal_id, to_stage, sequence):
    return new_event("deal.stage_changed", deal_id, {
        "deal_id": deal_id, "pipeline_id": "default", "from_stage": "discovery",
        "to_stage": to_stage, "probability": 0, "amount": None, "currency": None,
        "owner_id": "rep-1", "expected_close": None, "changed_at": T0}, sequence)


def in_days(days):
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


PRODUCT = {"code": "CLOUD-STD", "name_zh": "云服务标准版", "name_en": "Cloud standard",
           "unit": "套", "prices": {"CNY": "1000.00", "USD": "150.00"}, "tax_rate": 6}


def new_deal_id():
    return str(uuid.uuid4())


class Quotes:
    """HTTP calls of a rep (with a token) against one quotes container."""

    def __init__(self, http, config, sub="rep-1", roles=("rep",)):
        self.http = http
        self.config = config
        self.headers = token(sub, *roles)

    def as_(self, sub, *roles):
        return Quotes(self.http, self.config, sub, roles)

    def product(self, **overrides):
        resp = self.http.post("/api/v1/products", json={**PRODUCT, **overrides},
                              headers=token("admin-1", "admin"))
        assert resp.status_code == 201, resp.text
        return resp.json()

    def create(self, deal_id, **body):
        body = {"deal_id": deal_id, "currency": "CNY", "valid_until": in_days(30),
                "lines": [{"product_code": "CLOUD-STD", "quantity": "2"}], **body}
        return self.http.post("/api/v1/quotes", json=body, headers=self.headers)

    def must_create(self, deal_id, **body):
        resp = self.create(deal_id, **body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def act(self, quote_id, action, body=None):
        return self.http.post(f"/api/v1/quotes/{quote_id}/{action}", json=body or {},
                              headers=self.headers)

    def must(self, quote_id, action, body=None):
        resp = self.act(quote_id, action, body)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def get(self, quote_id):
        return self.http.get(f"/api/v1/quotes/{quote_id}", headers=self.headers).json()


def known_deal(mongo_db, amqp_uri, deal_id, **kw):
    """Tell the quotes service about an open deal and wait until its view has it."""
    publish(amqp_uri, deal_created(deal_id, **kw))
    assert wait_for(lambda: mongo_db.deals.find_one({"_id": deal_id})), "deal never seen"
