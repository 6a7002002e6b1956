"""Deliveries signed as the Standard Webhooks spec says: the spec's own Python library
(`standardwebhooks`, as a receiver would use it) verifies them."""
import datetime as dt
import json
import uuid

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks.signing import BadSecret, message_id, new_secret, signed_headers

BODY = json.dumps({"type": "deal.won", "subject": "d-1", "dealflowsequence": 4}).encode()


def _now():
    return dt.datetime.now(dt.UTC)


def test_a_receiver_verifies_a_delivery_with_the_spec_library():
    secret = new_secret()
    headers = signed_headers([secret], "msg_1", _now(), BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_during_a_rotation_both_secrets_verify():
    old, new = new_secret(), new_secret()
    headers = signed_headers([old, new], "msg_1", _now(), BODY)
    for secret in (old, new):
        Webhook(secret).verify(BODY, headers)


@pytest.mark.parametrize("tamper", ["body", "id", "timestamp", "secret"])
def test_a_changed_delivery_fails_verification(tamper):
    secret, now = new_secret(), _now()
    headers = signed_headers([secret], "msg_1", now, BODY)
    body = BODY
    if tamper == "body":
        body = BODY.replace(b'"d-1"', b'"d-2"')
    elif tamper == "id":
        headers["webhook-id"] = "msg_2"
    elif tamper == "timestamp":
        headers["webhook-timestamp"] = str(int(now.timestamp()) - 1)
    else:
        secret = new_secret()
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


def test_an_old_attempt_is_refused_by_the_receiver():
    secret = new_secret()
    headers = signed_headers([secret], "msg_1", _now() - dt.timedelta(minutes=10), BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers)


def test_the_message_id_is_stable_per_subscription_and_event():
    sub_a, sub_b = str(uuid.uuid4()), str(uuid.uuid4())
    assert message_id(sub_a, "ev-1") == message_id(sub_a, "ev-1")
    assert len({message_id(sub_a, "ev-1"), message_id(sub_b, "ev-1"),
                message_id(sub_a, "ev-2")}) == 3


@pytest.mark.parametrize("secret, problem", [
    ("whsec_not*base64", "base64"),
    ("whsec_" + "QUJD", "24 to 64 bytes"),
])
def test_a_bad_secret_is_refused(secret, problem):
    with pytest.raises(BadSecret, match=problem):
        signed_headers([secret], "msg_1", _now(), BODY)


def test_no_secret_is_refused():
    with pytest.raises(BadSecret):
        signed_headers([], "msg_1", _now(), BODY)
