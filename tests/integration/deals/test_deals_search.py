"""Deal search through a real container on FerretDB: a prefix of the deal's name or
account, normalised (case, width, a company's legal form), Chinese and English; each deal
once; filtered, scoped to a rep's own, paged by cursor; every bad parameter a 400. Deals
stored before search get their keys from a background migration."""
import datetime as dt

import pytest

from deals import domain
from deals import pipelines as P
from deals.migrations import search_key_fields
from deals.store import DEALS, encode
from kit.migrations import MARKERS
from tests.integration.deals.deals_support import Client, start_deals, wait_for
from tests.support.tokens import bearer

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def deals(container_factory, make_config, api):
    config = make_config("deals")
    start_deals(container_factory, config)
    http = api(config)
    client = Client(http)
    made = {
        "yunshan": client.create(name="上海云杉科技 CRM 项目", account="上海云杉科技有限公司",
                                 owner_id="rep-1"),
        "robotics": client.create(name="Summit Robotics renewal",
                                  account="Summit Robotics Inc.", owner_id="rep-1"),
        "foods": client.create(name="Pilot", account="ＳＵＭＭＩＴ Foods GmbH",
                               owner_id="rep-2"),
        "pioneer": client.create(name="Pioneer expansion", account="Contoso Ltd",
                                 owner_id="rep-1"),
    }
    return http, client, {k: v["id"] for k, v in made.items()}, made


def found(http, headers=None, **params):
    resp = http.get("/api/v1/deals/search", params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


def ids(page, names):
    back = {v: k for k, v in names.items()}
    return [back[d["id"]] for d in page["items"]]


def test_a_prefix_of_the_name_or_the_account_finds_each_deal_once(deals):
    http, _, names, _ = deals
    assert ids(found(http, q="上海云杉"), names) == ["yunshan"]  # name and account: once
    assert ids(found(http, q="summit"), names) == ["foods", "robotics"]  # fullwidth folded
    assert ids(found(http, q="SUMMIT rob"), names) == ["robotics"]
    assert ids(found(http, q="Contoso Ltd."), names) == ["pioneer"]  # legal form dropped
    assert ids(found(http, q="contoso", by="name"), names) == []
    assert ids(found(http, q="pioneer", by="account"), names) == []
    assert ids(found(http, q="pioneer", by="name"), names) == ["pioneer"]
    assert ids(found(http, q="summit", owner_id="rep-2"), names) == ["foods"]
    assert ids(found(http, q="summit", status="won"), names) == []
    assert ids(found(http, q="nobody"), names) == []
    assert found(http, q="summit")["items"][0]["account"] == "ＳＵＭＭＩＴ Foods GmbH"
    assert "name_key" not in found(http, q="summit")["items"][0]


def test_pages_follow_the_cursor_and_a_rep_sees_their_own(deals):
    http, _, names, _ = deals
    first = found(http, q="s", limit=1)
    seen = ids(first, names)
    cursor = first["next_cursor"]
    while cursor:
        page = found(http, q="s", limit=1, cursor=cursor)
        seen += ids(page, names)
        cursor = page["next_cursor"]
    assert seen == ["foods", "robotics"]  # in key order; "上海…" does not start with "s"
    rep = bearer("rep", sub="rep-1")
    assert ids(found(http, headers=rep, q="summit"), names) == ["robotics"]
    assert ids(found(http, headers=rep, q="summit", owner_id="rep-2"), names) == []


def test_an_edit_moves_the_deal_to_its_new_name(deals):
    http, client, names, made = deals
    client.must(made["pioneer"], "", {"name": "华信 expansion", "account": "华信科技股份有限公司"},
                method="patch")
    assert ids(found(http, q="pioneer"), names) == []
    assert ids(found(http, q="华信科技"), names) == ["pioneer"]


@pytest.mark.parametrize(("params", "field"), [
    ({}, "q"), ({"q": ""}, "q"), ({"q": "   "}, "q"), ({"q": "x" * 201}, "q"),
    ({"q": "a", "by": "phone"}, "by"), ({"q": "a", "limit": 0}, "limit"),
    ({"q": "a", "limit": 201}, "limit"), ({"q": "a", "status": "pending"}, "status"),
    ({"q": "a", "cursor": "not-a-cursor"}, "cursor"), ({"q": "a", "owner": "x"}, "owner"),
])
def test_a_bad_search_is_400_naming_the_parameter(deals, params, field):
    http, _, _, _ = deals
    resp = http.get("/api/v1/deals/search", params=params)
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["errors"]


def test_deals_stored_before_search_get_their_keys(container_factory, make_config, api,
                                                   mongo_db):
    old, _ = domain.new_deal(P.default_pipeline(), {"name": "Evergreen Labs pilot",
                                                    "account": "Evergreen Labs LLC"}, "d-old",
                                                   T0)
    doc = {**encode(old), "outbox": [], "revision": 1}
    for key in ("name_key", "account_key"):
        doc.pop(key)
    mongo_db[DEALS].insert_one(doc)
    config = make_config("deals")
    start_deals(container_factory, config)
    migration = search_key_fields()
    assert wait_for(lambda: (mongo_db[MARKERS].find_one({"_id": migration.name})
                             or {}).get("status") == "done")
    stored = mongo_db[DEALS].find_one({"_id": "d-old"})
    assert (stored["name_key"], stored["account_key"]) == ("evergreen labs pilot",
                                                           "evergreen labs")
    assert [d["id"] for d in found(api(config), q="evergreen")["items"]] == ["d-old"]
