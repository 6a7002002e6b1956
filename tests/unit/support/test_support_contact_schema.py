"""A ticket's contact takes a locale and a time zone for the customer's mail (kit.contacts),
and keeps taking what it took before."""
import pytest


def test_a_contact_with_locale_and_time_zone_loads():
    from support import schemas as S
    contact = {"name": "王芳", "email": "wang.fang@example.cn", "phone": "138 0000 0001",
               "locale": "zh-CN", "time_zone": "Asia/Shanghai"}
    assert S.ContactSchema().load(contact) == contact


@pytest.mark.parametrize(("field", "value"), [
    ("locale", "Chinese"), ("time_zone", "Mars/Olympus"), ("email", "wang.fang"),
    ("phone", "1" * 41), ("phone", "abc-not-a-phone"), ("phone", "+86 12345"),
])
def test_a_wrong_contact_field_is_named(field, value):
    from support import schemas as S
    errors = S.TicketIn().validate({"account": "Acme", "subject": "Help", "channel": "email",
                                    "contact": {"name": "王芳", field: value}})
    assert list(errors) == ["contact"] and list(errors["contact"]) == [field]
