"""Public lead capture (web-to-lead) against real FerretDB and RabbitMQ: allowed and
refused origins (CORS), rate limits shared by two instances, the honeypot, size limits,
duplicates that change nothing, and Chinese form data."""
import eventlet
import pytest

from tests.support.amqp import Subscriber

KEY = "pk_contact_2026"
SITE = "https://www.example.com"
URL = f"/api/v1/forms/{KEY}/leads"
# windows far longer than a test, so no test straddles one
LONG = 10**9


def forms(**form):
    return {"forms": [{"key": KEY, "origins": [SITE, "https://shop.example.cn"], **form}],
            "per_address": {"limit": 3, "window_seconds": LONG},
            "per_form": {"limit": 100, "window_seconds": LONG}}


@pytest.fixture
def start(container_factory, make_config, api):
    from leads.service import LeadsService

    def start(capture=None, **overrides):
        config = make_config("leads", CAPTURE=capture or forms(), SLA={"response_minutes": 0},
                             **overrides)
        container_factory(LeadsService, config).start()
        return api(config, auth={})  # public: no token

    return start


@pytest.fixture
def site(start):
    return start()


def post(client, body=None, origin=SITE, **kwargs):
    headers = kwargs.pop("headers", {})
    if origin:
        headers["Origin"] = origin
    if body is not None:
        kwargs["json"] = body
    return client.post(URL, headers=headers, **kwargs)


def leads_in(mongo_db):
    return list(mongo_db.leads.find({}, {"name": 1, "email": 1, "company": 1, "source": 1,
                                         "created_by": 1, "activities": 1, "custom": 1}))


ADA = {"name": "Ada Lovelace", "email": "ada@example.com", "company": "Engines"}


def test_an_allowed_origin_creates_a_lead_and_may_read_the_answer(site, mongo_db,
                                                                  rabbit_config):
    events = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.created")
    try:
        resp = post(site, ADA)
        assert resp.status_code == 202, resp.text
        assert resp.json() == {"received": True}
        assert resp.headers["Access-Control-Allow-Origin"] == SITE
        assert "Origin" in resp.headers["Vary"]
        (lead,) = leads_in(mongo_db)
        assert (lead["email"], lead["source"], lead["created_by"]) == (
            "ada@example.com", "web_form", f"customer:form:{KEY}")
        (created,) = events.drain(expect=1, timeout=5)
        assert created["actor"] == f"customer:form:{KEY}"
    finally:
        events.close()


@pytest.mark.parametrize("origin", ["https://evil.example.net", "null", None,
                                    "http://www.example.com"])
def test_another_origin_is_403_without_cors_and_stores_nothing(site, mongo_db, origin):
    resp = post(site, ADA, origin=origin)
    assert resp.status_code == 403
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert leads_in(mongo_db) == []


def test_a_form_may_allow_servers_without_origin(start, mongo_db):
    client = start(forms(allow_no_origin=True))
    assert post(client, ADA, origin=None).status_code == 202
    assert len(leads_in(mongo_db)) == 1


def test_preflight_answers_allowed_origins_only(site):
    ok = site.options(URL, headers={"Origin": "https://shop.example.cn",
                                    "Access-Control-Request-Method": "POST",
                                    "Access-Control-Request-Headers": "content-type"})
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "https://shop.example.cn"
    assert ok.headers["Access-Control-Allow-Methods"] == "POST"
    assert "Content-Type" in ok.headers["Access-Control-Allow-Headers"]
    refused = site.options(URL, headers={"Origin": "https://evil.example.net",
                                         "Access-Control-Request-Method": "POST"})
    assert refused.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_an_unknown_form_is_404(site, mongo_db):
    resp = site.post("/api/v1/forms/pk_unknown_form/leads", json=ADA,
                     headers={"Origin": SITE})
    assert resp.status_code == 404
    assert leads_in(mongo_db) == []


def test_the_address_limit_is_429_with_retry_after(site, mongo_db):
    for n in range(3):
        assert post(site, {**ADA, "email": f"a{n}@example.com"}).status_code == 202
    resp = post(site, {**ADA, "email": "a9@example.com"})
    assert resp.status_code == 429
    assert 0 < int(resp.headers["Retry-After"]) <= LONG
    assert resp.headers["Access-Control-Allow-Origin"] == SITE
    assert len(leads_in(mongo_db)) == 3


def test_two_instances_share_the_limit(start, mongo_db):
    first, second = start(), start()
    answers = [post(client, {**ADA, "email": f"p{n}@example.com"}).status_code
               for n, client in enumerate([first, second] * 3)]
    assert answers == [202, 202, 202, 429, 429, 429]
    assert len(leads_in(mongo_db)) == 3


def test_two_instances_share_the_limit_when_requests_race(start, mongo_db):
    first, second = start(), start()
    pool = eventlet.GreenPool(10)
    answers = list(pool.imap(
        lambda n: post((first, second)[n % 2], {**ADA, "email": f"r{n}@example.com"}
                       ).status_code, range(10)))
    assert sorted(answers) == [202] * 3 + [429] * 7
    assert len(leads_in(mongo_db)) == 3


def test_the_form_limit_holds_across_addresses(start, mongo_db):
    capture = forms()
    capture["per_form"] = {"limit": 4, "window_seconds": LONG}
    client = start(capture, AUTH={"trusted_proxies": ["127.0.0.1"]})
    answers = [post(client, {**ADA, "email": f"f{n}@example.com"},
                    headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
               for n in range(6)]
    assert answers == [202] * 4 + [429] * 2


def test_a_filled_honeypot_is_answered_as_success_and_writes_nothing(site, mongo_db,
                                                                      rabbit_config):
    events = Subscriber(rabbit_config["AMQP_URI"], "leads", "#")
    try:
        resp = post(site, {**ADA, "website": "http://spam.example"})
        assert resp.status_code == 202 and resp.json() == {"received": True}
        assert leads_in(mongo_db) == []
        assert events.drain(timeout=1.5) == []
    finally:
        events.close()


def test_an_empty_honeypot_is_a_person(site, mongo_db):
    assert post(site, {**ADA, "website": ""}).status_code == 202
    assert len(leads_in(mongo_db)) == 1


def test_an_oversized_body_is_413_and_stores_nothing(start, mongo_db):
    client = start(forms(max_body_bytes=2048))
    resp = post(client, {**ADA, "company": "x" * 3000})
    assert resp.status_code == 413
    assert resp.headers["Access-Control-Allow-Origin"] == SITE
    assert leads_in(mongo_db) == []


@pytest.mark.parametrize("field,value", [
    ("email", "not-an-email"),
    ("name", ""),
    ("company", "x" * 201),
    ("source", "api"),
    ("owner_id", "mallory"),
    ("custom", {f"k{n}": "v" for n in range(21)}),
])
def test_a_bad_field_is_400_naming_it(site, mongo_db, field, value):
    resp = post(site, {**ADA, field: value})
    assert resp.status_code == 400
    assert field in resp.json()["errors"]
    assert leads_in(mongo_db) == []


def test_a_lead_without_email_or_phone_is_400(site, mongo_db):
    resp = post(site, {"name": "Ada"})
    assert resp.status_code == 400 and "email" in resp.json()["errors"]


def test_a_known_address_changes_nothing_and_is_told_nothing(site, mongo_db):
    assert post(site, ADA).status_code == 202
    again = post(site, {"name": "Mallory", "email": "ADA@example.com", "company": "Evil"})
    assert again.status_code == 202 and again.json() == {"received": True}
    (lead,) = leads_in(mongo_db)
    assert (lead["name"], lead["company"]) == ("Ada Lovelace", "Engines")
    (repeat,) = lead["activities"]
    assert (repeat["type"], repeat["actor"]) == ("form", f"customer:form:{KEY}")
    assert "Mallory" in repeat["summary"]


CHINESE = {"name": "张伟", "company": "北京星辰科技有限公司", "email": "zhang.wei@example.cn",
           "phone": "138 0013 8000", "country": "CN", "region": "北京"}


def test_chinese_form_data_as_json(site, mongo_db):
    assert post(site, {**CHINESE, "custom": {"留言": "请联系我，谢谢"}},
                origin="https://shop.example.cn").status_code == 202
    (lead,) = leads_in(mongo_db)
    assert (lead["name"], lead["company"]) == ("张伟", "北京星辰科技有限公司")
    assert lead["custom"] == {"留言": "请联系我，谢谢"}


def test_chinese_form_data_form_encoded(site, mongo_db):
    body = {**CHINESE, "utm_source": "微信", "custom_留言": "请联系我", "website": ""}
    resp = post(site, data=body, origin="https://shop.example.cn")
    assert resp.status_code == 202, resp.text
    lead = mongo_db.leads.find_one({}, {"name": 1, "company": 1, "phone": 1, "utm": 1,
                                        "custom": 1, "region": 1})
    assert (lead["name"], lead["company"], lead["region"]) == (
        "张伟", "北京星辰科技有限公司", "北京")
    assert lead["phone"] == "+8613800138000"
    assert (lead["utm"], lead["custom"]) == ({"source": "微信"}, {"留言": "请联系我"})
