"""Search keys and the queries a search runs (leads.keys, leads.search): pure."""
import pytest

from kit.errors import Invalid
from leads import keys, search


@pytest.mark.parametrize("raw,key", [
    ("ACME, Inc.", "acme"),
    ("Acme Inc", "acme"),
    ("  acme  ", "acme"),
    ("Analytical Engines Ltd.", "analytical engines"),
    ("Company Ltd", "company"),
    ("北京字节跳动科技有限公司", "北京字节跳动科技"),
    ("ＡＣＭＥ　GmbH", "acme"),
    (None, None),
])
def test_company_key(raw, key):
    assert keys.normalise_company(raw) == key


def test_name_key_folds_case_width_and_spaces():
    assert keys.normalise_name("  Ada   LOVELACE ") == "ada lovelace"
    assert keys.normalise_name("Ｗｅｉ") == "wei"


@pytest.mark.parametrize("q,by,expected", [
    ("138 0013 8000", "any", [("phone", "+8613800138000")]),
    ("+86 138-0013-8000", "phone", [("phone", "+8613800138000")]),
    ("138 0013", "any", [("phone", "+86138 0013".replace(" ", ""))]),
    ("0049 30 1234", "phone", [("phone", "+49301234")]),
    ("Ada@Example.COM", "any", [("email", "ada@example.com")]),
    ("ada", "email", [("email", "ada")]),
    ("Acme Inc", "company", [("company_key", "acme")]),
    ("Ada  L", "name", [("name_key", "ada l")]),
    ("Acme", "any", [("name_key", "acme"), ("company_key", "acme")]),
])
def test_prefixes_normalise_what_is_typed(q, by, expected):
    assert search.prefixes(q, by, "CN") == expected


def test_a_range_covers_exactly_the_prefix():
    query = search.query("name_key", "ad")
    assert query == {"name_key": {"$gte": "ad", "$lt": "ae"}}
    after = search.query("name_key", "ad", ("ada", "L1"))
    assert after == {"$or": [{"name_key": {"$gt": "ada", "$lt": "ae"}},
                             {"name_key": "ada", "_id": {"$gt": "L1"}}]}


def test_merge_lists_a_lead_once_at_its_lesser_key_and_stops_where_a_stream_may_go_on():
    searched = [("name_key", "ac"), ("company_key", "ac")]
    both = {"_id": "b", "name_key": "acme", "company_key": "acme ag"}
    by_name = [both, {"_id": "n", "name_key": "acorn", "company_key": None}]
    by_company = [{"_id": "c", "name_key": "zed", "company_key": "acme"}, both]
    rows, after = search.merge([("name_key", by_name), ("company_key", by_company)],
                               searched, limit=5)
    assert [r["_id"] for r in rows] == ["b", "c", "n"]  # b at "acme" (its name), c at "acme"
    assert after is None
    rows, after = search.merge([("name_key", by_name), ("company_key", by_company)],
                               searched, limit=1)
    # both streams filled their request (2 rows): nothing past the lesser last row counts
    assert [r["_id"] for r in rows] == ["b"]
    assert after == ("acme", "b")
    rows, after = search.merge([("name_key", by_name[:1]), ("company_key", by_company)],
                               searched, limit=1)
    assert [r["_id"] for r in rows] == ["b"] and after == ("acme", "b")


@pytest.mark.parametrize("values", [None, ["a"], ["a", 1], "x"])
def test_a_bad_cursor_is_invalid_naming_it(values):
    with pytest.raises(Invalid) as err:
        search.position(values)
    assert "cursor" in err.value.extra["errors"]


def test_scope_narrows_filters_and_a_conflict_finds_nothing():
    assert search.scoped({"status": "new"}, {"owner_id": "ann"}) == {"status": "new",
                                                                     "owner_id": "ann"}
    assert search.scoped({"owner_id": "bob"}, {"owner_id": "ann"}) is None
