"""The quote's customer takes how to reach them (validated as kit.contacts says), and a
contract is open for signing from its creation: contract.created is the customer's
"ready to sign" mail, and its link is read without changing the contract."""
import datetime as dt

import pytest

from kit.errors import Conflict
from quotes import contracts as C
from tests.unit.quotes.test_quotes_contract_rules import NOW, QUOTE, SCHEDULE

CUSTOMER = {"name": "上海云杉科技有限公司", "contact": "张伟", "email": "zhang.wei@example.cn",
            "locale": "zh-CN", "time_zone": "Asia/Shanghai"}


def test_the_quote_customer_takes_a_contact():
    from quotes import schemas as S
    loaded = S.CustomerIn().load(CUSTOMER)
    assert loaded == {**CUSTOMER, "address": None, "phone": None}
    assert S.CustomerOut().dump(loaded) == loaded


@pytest.mark.parametrize(("field", "value"), [
    ("email", "zhang.wei"), ("phone", "call me"), ("locale", "Chinese"),
    ("time_zone", "Mars/Olympus"), ("name", ""),
])
def test_a_wrong_customer_field_is_named(field, value):
    from quotes import schemas as S
    errors = S.QuoteIn().validate({"deal_id": "d1", "currency": "CNY",
                                   "valid_until": "2099-01-01T00:00:00+00:00",
                                   "lines": [{"product_code": "P-1", "quantity": "1"}],
                                   "customer": {**CUSTOMER, field: value}})
    assert errors == {"customer": {field: errors["customer"][field]}}


def opened(**changes):
    doc, events = C.new_contract(QUOTE, {"name": "Seller"}, SCHEDULE, "Terms.", NOW,
                                 link_id="l1", link_expires_at=NOW + dt.timedelta(days=14))
    return {**doc, **changes}, events


def test_a_new_contract_is_open_for_signing():
    doc, [(etype, data)] = opened()
    assert (doc["link_id"], doc["link_expires_at"]) == ("l1", NOW + dt.timedelta(days=14))
    assert etype == "contract.created" and "l1" not in str(data)  # no link in the event
    assert C.check_open_link(doc, NOW) is None


@pytest.mark.parametrize(("changes", "words"), [
    ({"status": C.EXECUTED}, "executed"), ({"status": C.VOIDED}, "voided"),
    ({"status": C.SIGNED}, "signed"),
    ({"link_id": None, "link_expires_at": None}, "rescheduled"),
    ({"link_expires_at": NOW}, "expired"),
])
def test_no_open_link(changes, words):
    doc, _ = opened(**changes)
    with pytest.raises(Conflict, match=words):
        C.check_open_link(doc, NOW)


def test_without_a_link_id_a_contract_waits_to_be_sent():
    doc, _ = C.new_contract(QUOTE, {"name": "Seller"}, SCHEDULE, "Terms.", NOW,
                            link_expires_at=NOW)
    assert (doc["link_id"], doc["link_expires_at"]) == (None, None)
