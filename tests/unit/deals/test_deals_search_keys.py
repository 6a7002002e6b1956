"""What a deal search looks for (deals.search), and the keys a deal's write stores
(deals.store.search_keys): the leads' normalisation (kit.textkeys), pure."""
import pytest

from deals.search import prefixes
from deals.store import encode, search_keys
from kit.errors import Invalid


@pytest.mark.parametrize(("q", "by", "expected"), [
    ("Summit", "any", [("name_key", "summit"), ("account_key", "summit")]),
    ("  ＳＵＭＭＩＴ  Rob ", "name", [("name_key", "summit rob")]),
    ("Contoso, Ltd.", "account", [("account_key", "contoso")]),
    ("Ltd", "account", [("account_key", "ltd")]),  # a legal form alone stays searchable
    ("上海云杉科技有限公司", "account", [("account_key", "上海云杉科技")]),
])
def test_a_query_searches_normalised_prefixes(q, by, expected):
    assert prefixes(q, by) == expected


@pytest.mark.parametrize("q", ["", "   ", "\t"])
def test_a_blank_query_is_invalid(q):
    with pytest.raises(Invalid) as caught:
        prefixes(q, "any")
    assert "q" in caught.value.extra["errors"]


def test_a_write_of_a_name_or_an_account_stores_their_keys():
    assert search_keys({"name": "Pilot", "amount": 1}) == {"name_key": "pilot"}
    assert search_keys({"account": "Summit Robotics Inc."}) == {"account_key": "summit robotics"}
    assert search_keys({"account": None}) == {"account_key": None}
    assert search_keys({"stage": "won"}) == {}
    assert encode({"name": "Ａｃｍｅ"})["name_key"] == "acme"
