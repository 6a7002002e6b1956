"""A customer's contact as quotes and support store it and answer notify: strict on write
(one case per field and error), tolerant on read, an id that is the same in every service
and carries no address."""
import pytest

from kit.contacts import ContactFields, contact_id, contact_of

VALID = {"email": "zhang.wei@example.cn", "phone": "+86 138 0000 0001", "locale": "zh-CN",
         "time_zone": "Asia/Shanghai"}


def test_a_full_contact_loads():
    assert ContactFields().load(VALID) == VALID


def test_every_field_is_optional():
    assert ContactFields().load({}) == dict.fromkeys(VALID)


@pytest.mark.parametrize(("field", "value"), [
    ("email", "zhang.wei"), ("email", "a@b@example.cn"), ("email", "x" * 250 + "@example.cn"),
    ("phone", "call me"), ("phone", "+"), ("phone", "12"), ("phone", "1" * 40),
    ("phone", "+86 12345"), ("phone", "+1 555 0100"), ("phone", "+999 1234 5678"),
    ("locale", "Chinese"), ("locale", "zh_CN"), ("locale", "ZH-cn"), ("locale", ""),
    ("time_zone", "Mars/Olympus"), ("time_zone", "../../etc/passwd"), ("time_zone", ""),
    ("time_zone", "Asia"), ("time_zone", "GMT+8 "),
])
def test_a_wrong_field_is_named(field, value):
    assert list(ContactFields().validate({field: value})) == [field]


@pytest.mark.parametrize(("field", "value"), [
    ("locale", "en"), ("locale", "zh-Hant-TW"), ("time_zone", "UTC"),
    ("time_zone", "America/Argentina/Buenos_Aires"), ("phone", "(021) 6888-0000"),
    ("phone", "+49 151 12345678"), ("phone", "+852 9412 3456"),
])
def test_other_forms_are_taken(field, value):
    assert ContactFields().validate({field: value}) == {}


def test_the_id_is_per_address_and_not_the_address():
    assert contact_id("Zhang.Wei@Example.CN ") == contact_id("zhang.wei@example.cn")
    assert contact_id("zhang.wei@example.cn") != contact_id("wang.fang@example.cn")
    assert "zhang" not in contact_id("zhang.wei@example.cn")


@pytest.mark.parametrize("stored", [None, {}, {"email": None}, {"email": "  "},
                                    {"phone": "+8613800000001"}])
def test_no_address_no_contact(stored):
    assert contact_of("张伟", stored) is None


def test_a_contact_stored_before_these_fields_reads():
    assert contact_of("张伟", {"name": "张伟", "email": "zhang.wei@example.cn"}) == {
        "id": contact_id("zhang.wei@example.cn"), "name": "张伟",
        "email": "zhang.wei@example.cn", "phone": None, "locale": None, "time_zone": None}
