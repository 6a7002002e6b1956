"""A subscription's fields, one case per field and error."""
import pytest
from marshmallow import ValidationError

from webhooks.schemas import SubscriptionIn
from webhooks.signing import new_secret

GOOD = {"url": "https://hooks.example.com/dealflow", "event_types": ["deal.won", "deal.lost"]}


def test_a_good_subscription_loads_with_defaults():
    loaded = SubscriptionIn().load(GOOD)
    assert loaded == {**GOOD, "description": None, "secret": None}


@pytest.mark.parametrize("url", ["https://hooks.example.com:65535/x",
                                 "http://[::1]:8080/x", "https://hooks.example.com:1/x"])
def test_a_url_with_a_port_in_range_loads(url):
    assert SubscriptionIn().load({**GOOD, "url": url})["url"] == url


def test_a_given_secret_is_kept():
    secret = new_secret()
    assert SubscriptionIn().load({**GOOD, "secret": secret})["secret"] == secret


@pytest.mark.parametrize("change, field, message", [
    ({"url": None}, "url", "Field may not be null"),
    ({"url": "not a url"}, "url", "Not a valid URL"),
    ({"url": "ftp://hooks.example.com/x"}, "url", "Not a valid URL"),
    ({"url": "https://h.example.com/" + "x" * 2000}, "url", "Longer than maximum"),
    ({"url": "http://127.0.0.1:99999/hook"}, "url", "a port is a number from 1 to 65535"),
    ({"url": "http://127.0.0.1:0/hook"}, "url", "a port is a number from 1 to 65535"),
    ({"url": "http://[::1]:65536/hook"}, "url", "a port is a number from 1 to 65535"),
    ({"url": "http://hooks.example.com:٣/x"}, "url", "a port is a number from 1 to 65535"),
    ({"url": "http://hooks.example.com:abc/"}, "url", "Not a valid URL"),
    ({"url": "http://hooks.example.com:/x"}, "url", "Not a valid URL"),
    ({"url": "http://[::1/hook"}, "url", "Not a valid URL"),
    ({"url": "http://::1]/hook"}, "url", "Not a valid URL"),
    ({"event_types": []}, "event_types", "at least one event type"),
    ({"event_types": ["deal.bought"]}, "event_types", "Must be one of"),
    ({"event_types": "deal.won"}, "event_types", "Not a valid list"),
    ({"event_types": ["deal.won", "deal.won"]}, "event_types", "each event type once"),
    ({"description": "  "}, "description", "Must not be blank"),
    ({"description": "x" * 201}, "description", "Longer than maximum"),
    ({"secret": "whsec_QUJD"}, "secret", "24 to 64 bytes"),
    ({"secret": "whsec_***"}, "secret", "base64"),
    ({"callback": "x"}, "callback", "Unknown field"),
])
def test_a_bad_field_is_refused(change, field, message):
    with pytest.raises(ValidationError) as caught:
        SubscriptionIn().load({**GOOD, **change})
    assert list(caught.value.messages) == [field]
    assert message in str(caught.value.messages[field])


@pytest.mark.parametrize("field", ["url", "event_types"])
def test_a_required_field_is_missing(field):
    body = {k: v for k, v in GOOD.items() if k != field}
    with pytest.raises(ValidationError, match="Missing data"):
        SubscriptionIn().load(body)
