"""The webhooks admin API: subscriptions with a secret shown once, rotation that keeps the
old secret signing for a while, the delivery log by cursor, who may call what, and bad
input refused with a 4xx problem+json that names the field and writes nothing."""
import datetime as dt
import uuid

import pytest
from standardwebhooks.webhooks import Webhook

from kit.fields import rfc3339
from tests.integration.webhooks.webhooks_support import (
    assigned,
    now,
    publish,
    start_webhooks,
    subscribe,
    wait_received,
    webhooks_config,
)
from tests.support.tokens import token
from tests.support.wait import wait_for

GOOD = {"event_types": ["lead.assigned"]}
SUB = "/api/v1/subscriptions/{id}"


@pytest.fixture
def webhooks(container_factory, make_config, api):
    config = webhooks_config(make_config)
    start_webhooks(container_factory, config)
    return config, api(config)


def test_a_subscription_shows_its_secret_once(webhooks, receiver, mongo_db):
    config, http = webhooks
    created = subscribe(http, receiver, "lead.assigned", description="ERP")
    assert created["secret"].startswith("whsec_") and created["enabled"] is True
    shown = http.get(SUB.format(**created)).json()
    assert "secret" not in shown and shown["secrets_in_force"] == 1
    listed = http.get("/api/v1/subscriptions").json()["items"]
    assert [s["id"] for s in listed] == [created["id"]] and "secret" not in listed[0]
    etag = http.get(SUB.format(**created)).headers["ETag"]
    resp = http.patch(SUB.format(**created), json={"event_types": ["deal.won"]},
                      headers={"If-Match": etag})
    assert resp.status_code == 200 and resp.json()["event_types"] == ["deal.won"]
    assert resp.headers["ETag"] != etag
    assert http.delete(SUB.format(**created)).status_code == 204
    assert http.get(SUB.format(**created)).status_code == 404


def test_during_a_rotation_old_and_new_secret_both_verify(webhooks, receiver):
    config, http = webhooks
    sub = subscribe(http, receiver, "lead.assigned")
    old = receiver.secret
    resp = http.post(SUB.format(**sub) + "/rotate", json={}, headers={"If-Match": '"0"'})
    assert resp.status_code == 200, resp.text
    new = resp.json()["secret"]
    assert new != old and resp.json()["previous_valid_until"]
    assert http.get(SUB.format(**sub)).json()["secrets_in_force"] == 2
    event = assigned(str(uuid.uuid4()), 1)
    publish(config, [event])
    assert wait_received(receiver, [event["id"]])  # verified with the old secret
    webhook_id, _ = receiver.received[0]
    body, headers = receiver.raw[webhook_id]
    Webhook(new).verify(body, headers)

    # without a grace period the old secret stops signing at once
    resp = http.post(SUB.format(**sub) + "/rotate", json={"grace_hours": 0},
                     headers={"If-Match": resp.headers["ETag"]})
    assert resp.status_code == 200, resp.text
    assert http.get(SUB.format(**sub)).json()["secrets_in_force"] == 1


def test_the_delivery_log_pages_by_cursor(webhooks, receiver):
    config, http = webhooks
    sub = subscribe(http, receiver, "lead.assigned")
    events = [assigned(str(uuid.uuid4()), 1) for _ in range(5)]
    publish(config, events)
    assert wait_received(receiver, [e["id"] for e in events])
    # (an attempt's outcome is written once the receiver has answered)
    assert wait_for(lambda: http.get(SUB.format(**sub) + "/deliveries",
                                     params={"status": "pending"}).json()["items"] == [])
    seen, cursor = [], None
    while True:
        resp = http.get(SUB.format(**sub) + "/deliveries",
                        params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert resp.status_code == 200, resp.text
        seen += resp.json()["items"]
        cursor = resp.json()["next_cursor"]
        if not cursor:
            break
    assert sorted(d["event_id"] for d in seen) == sorted(e["id"] for e in events)
    assert {d["status"] for d in seen} == {"delivered"}
    one = http.get(SUB.format(**sub) + f"/deliveries/{seen[0]['id']}").json()
    assert one["log"][0]["status"] == 200 and one["attempts"] == 1
    assert seen[0]["id"] in receiver.seen  # the log's id is the webhook-id


@pytest.mark.parametrize("roles, method, status", [
    (("integration",), "get", 200),
    (("integration",), "post", 403),
    (("rep",), "get", 403),
    ((), "get", 403),
])
def test_who_may_call(webhooks, mongo_db, roles, method, status):
    config, http = webhooks
    headers = {"Authorization": f"Bearer {token(*roles)}"}
    resp = getattr(http.session, method)(http.base + "/api/v1/subscriptions", headers=headers,
                                         json={**GOOD, "url": "http://127.0.0.1:1/x"})
    assert resp.status_code == status, resp.text
    assert mongo_db.subscriptions.count_documents({}) == 0


CREATE = [
    ({"url": None}, "url", "Field may not be null"),
    ({"url": "https://evil.example.net/x"}, "url", "allow-list"),
    ({"url": "http://127.0.0.2.example/x"}, "url", "allow-list"),
    ({"url": "http://127.0.0.1:99999/hook"}, "url", "a port is a number from 1 to 65535"),
    ({"url": "http://127.0.0.1:0/hook"}, "url", "a port is a number from 1 to 65535"),
    ({"url": "http://127.0.0.1:abc/hook"}, "url", "Not a valid URL"),
    ({"url": "http://[::1/hook"}, "url", "Not a valid URL"),
    ({"event_types": ["deal.bought"]}, "event_types", "Must be one of"),
    ({"event_types": []}, "event_types", "at least one"),
    ({"secret": "whsec_QUJD"}, "secret", "24 to 64 bytes"),
    ({"callback": "x"}, "callback", "Unknown field"),
]


@pytest.mark.parametrize("change, field, message", CREATE)
def test_a_bad_subscription_is_refused_and_nothing_written(webhooks, receiver, mongo_db,
                                                           change, field, message):
    config, http = webhooks
    resp = http.post("/api/v1/subscriptions", json={**GOOD, "url": receiver.hook_url, **change})
    assert resp.status_code == 400, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert message in str(resp.json()["errors"][field])
    assert mongo_db.subscriptions.count_documents({}) == 0


@pytest.mark.parametrize("method, suffix, body, params, status, field", [
    ("patch", "", {"url": "https://evil.example.net/x"}, None, 400, "url"),
    ("patch", "", {"event_types": "deal.won"}, None, 400, "event_types"),
    ("patch", "", {"url": "http://127.0.0.1:99999/hook"}, None, 400, "url"),
    ("post", "/rotate", {"grace_hours": -1}, None, 400, "grace_hours"),
    ("post", "/rotate", {"secret": "nope"}, None, 400, "secret"),
    ("post", "/redeliver", {}, None, 400, "since"),
    ("post", "/redeliver", {"since": "2026-11-27T10:00:00"}, None, 400, "since"),
    ("post", "/redeliver", {"since": "2999-01-01T00:00:00Z"}, None, 400, "since"),
    ("post", "/redeliver", {"since": "0001-01-01T00:00:00+08:00"}, None, 400, "since"),
    ("post", "/redeliver", {"since": "2026-11-27T10:00:00Z",
                            "until": "9999-12-31T23:59:59-08:00"}, None, 400, "until"),
    ("post", "/redeliver", {"since": "2026-11-27T10:00:00Z",
                            "until": "2026-11-27T09:00:00Z"}, None, 400, "until"),
    ("get", "/deliveries", None, {"status": "lost"}, 400, "status"),
    ("get", "/deliveries", None, {"cursor": "!!"}, 400, "cursor"),
    ("get", "/deliveries", None, {"limit": "0"}, 400, "limit"),
])
def test_bad_input_on_a_subscription_is_refused(webhooks, receiver, mongo_db, method, suffix,
                                                body, params, status, field):
    config, http = webhooks
    sub = subscribe(http, receiver, "lead.assigned")
    before = mongo_db.subscriptions.find_one({"_id": sub["id"]})
    resp = getattr(http, method)(SUB.format(**sub) + suffix, json=body, params=params,
                                 headers={"If-Match": '"0"'})
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert field in resp.json()["errors"]
    assert mongo_db.subscriptions.find_one({"_id": sub["id"]}) == before
    assert mongo_db.deliveries.count_documents({}) == 0


@pytest.mark.parametrize("since, until", [
    ("0001-01-01T00:00:00Z", None),  # before the streams' timestamps (1970) begin
    (None, "9999-12-31T23:59:59Z"),  # no time after it to stop reading at
])
def test_a_redelivery_from_the_ends_of_the_years_is_served(webhooks, receiver, since, until):
    config, http = webhooks
    body = {"since": since or rfc3339(now() - dt.timedelta(hours=1)), "until": until}
    sub = subscribe(http, receiver, "lead.assigned")
    event = assigned(str(uuid.uuid4()), 1)
    publish(config, [event])
    assert wait_received(receiver, [event["id"]])
    resp = http.post(SUB.format(**sub) + "/redeliver", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["events"] == 1


@pytest.mark.parametrize("method, suffix", [
    ("get", ""), ("patch", ""), ("delete", ""), ("post", "/rotate"), ("post", "/enable"),
    ("post", "/disable"), ("get", "/deliveries"), ("get", "/deliveries/msg_1"),
    ("post", "/redeliver"),
])
def test_an_unknown_subscription_is_404(webhooks, method, suffix):
    config, http = webhooks
    body = {"since": "2026-11-27T10:00:00Z"} if suffix == "/redeliver" else {}
    resp = getattr(http, method)(SUB.format(id=uuid.uuid4()) + suffix, json=body,
                                 headers={"If-Match": '"0"'})
    assert resp.status_code == 404, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")


def test_deliveries_are_counted_per_subscription(webhooks, receiver):
    config, http = webhooks
    sub = subscribe(http, receiver, "lead.assigned")
    events = [assigned(str(uuid.uuid4()), 1) for _ in range(3)]
    publish(config, events)
    assert wait_received(receiver, [e["id"] for e in events])
    # (counted once the outcome is written, after the receiver answered)
    delivered = (f'dealflow_webhook_deliveries_total{{outcome="delivered",'
                 f'subscription="{sub["id"]}"}} 3.0')
    assert wait_for(lambda: delivered in http.get("/metrics").text)
    text = http.get("/metrics").text
    assert f'dealflow_webhook_request_seconds_count{{subscription="{sub["id"]}"}} 3.0' in text


def test_a_delivery_log_keeps_the_newest_attempts(container_factory, make_config, api,
                                                  receiver):
    config = webhooks_config(make_config, log_attempts=2)
    start_webhooks(container_factory, config)
    http = api(config)
    sub = subscribe(http, receiver, "lead.assigned")
    receiver.fail(3)
    event = assigned(str(uuid.uuid4()), 1)
    publish(config, [event])
    assert wait_received(receiver, [event["id"]])

    def delivered():
        items = http.get(SUB.format(**sub) + "/deliveries").json()["items"]
        return items and items[0]["status"] == "delivered" and items[0]
    delivery = wait_for(delivered)
    assert delivery["attempts"] == 4
    assert [a["status"] for a in delivery["log"]] == [503, 200]


@pytest.mark.parametrize("method, suffix, body", [
    ("patch", "", {"description": "CRM"}),
    ("post", "/rotate", {}),
])
@pytest.mark.parametrize("if_match, status", [(None, 428), ('"1"', 409), ('"x"', 428),
                                              ('"99999999999999999999999"', 409)])
def test_a_change_without_the_current_etag_writes_nothing(webhooks, receiver, mongo_db,
                                                         method, suffix, body, if_match,
                                                         status):
    config, http = webhooks
    sub = subscribe(http, receiver, "lead.assigned")
    before = mongo_db.subscriptions.find_one({"_id": sub["id"]})
    headers = {} if if_match is None else {"If-Match": if_match}
    resp = getattr(http, method)(SUB.format(**sub) + suffix, json=body, headers=headers)
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert mongo_db.subscriptions.find_one({"_id": sub["id"]}) == before


def test_two_rotations_from_one_read_give_one_secret(webhooks, receiver, mongo_db):
    """Both admins read revision 0; the second rotation would have dropped the secret the
    first one handed out, so it is refused and the first one's secret stays in force."""
    config, http = webhooks
    sub = subscribe(http, receiver, "lead.assigned")
    etag = http.get(SUB.format(**sub)).headers["ETag"]
    first = http.post(SUB.format(**sub) + "/rotate", json={}, headers={"If-Match": etag})
    second = http.post(SUB.format(**sub) + "/rotate", json={}, headers={"If-Match": etag})
    assert (first.status_code, second.status_code) == (200, 409), second.text
    assert http.get(SUB.format(**sub)).json()["secrets_in_force"] == 2
    event = assigned(str(uuid.uuid4()), 1)
    publish(config, [event])
    assert wait_received(receiver, [event["id"]])
    webhook_id, _ = receiver.received[0]
    body, headers = receiver.raw[webhook_id]
    Webhook(first.json()["secret"]).verify(body, headers)


def test_secrets_are_stored_sealed(webhooks, receiver, mongo_db):
    config, http = webhooks
    sub = subscribe(http, receiver, "lead.assigned")
    rotated = http.post(SUB.format(**sub) + "/rotate", json={},
                        headers={"If-Match": '"0"'}).json()["secret"]
    stored = str(mongo_db.subscriptions.find_one({"_id": sub["id"]}))
    for secret in (sub["secret"], rotated):
        assert secret not in stored and secret.removeprefix("whsec_") not in stored
    assert stored.count("sealed:v1:test:") == 2
