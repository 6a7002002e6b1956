"""Subscriptions stored before secrets were sealed: the migration seals their secrets once
at start, and deliveries keep verifying with the secret the integrator holds."""
import datetime as dt
import uuid

from standardwebhooks.webhooks import Webhook

from tests.integration.webhooks.webhooks_support import (
    assigned,
    publish,
    start_webhooks,
    wait_received,
    webhooks_config,
)
from tests.support.wait import wait_for
from webhooks.service import WebhooksService
from webhooks.signing import new_secret


def old_subscription(receiver, secret, created_at):
    """A subscription as the service stored it before sealing and revisions existed."""
    return {"_id": str(uuid.uuid4()), "url": receiver.hook_url,
            "event_types": ["lead.assigned"], "description": None,
            "secrets": [{"secret": secret, "expires_at": None}], "enabled": True,
            "failures_in_a_row": 0, "created_at": created_at, "updated_at": created_at,
            "version": 0}


def test_secrets_stored_in_the_clear_are_sealed_and_still_sign(
        container_factory, make_config, api, mongo_db, receiver):
    secret = new_secret()
    # created just before the start: the intake takes events from a subscription's creation
    doc = old_subscription(receiver, secret, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    mongo_db.subscriptions.insert_one(doc)
    config = webhooks_config(make_config)
    container = start_webhooks(container_factory, config)
    migrations = next(d for d in container.extensions if d.__class__.__name__ == "Migrations")
    assert wait_for(lambda: migrations.finished)

    stored = mongo_db.subscriptions.find_one({"_id": doc["_id"]})
    assert stored["secrets"][0]["secret"].startswith("sealed:v1:test:")
    assert secret.removeprefix("whsec_") not in str(stored)
    receiver.secret = secret
    event = assigned(str(uuid.uuid4()), 1)
    publish(config, [event])
    assert wait_received(receiver, [event["id"]])
    webhook_id, _ = receiver.received[0]
    body, headers = receiver.raw[webhook_id]
    Webhook(secret).verify(body, headers)

    # the old document had no revision: it reads as ETag "0" and takes If-Match "0"
    http = api(config)
    assert http.get(f"/api/v1/subscriptions/{doc['_id']}").headers["ETag"] == '"0"'
    resp = http.patch(f"/api/v1/subscriptions/{doc['_id']}", json={"description": "ERP"},
                      headers={"If-Match": '"0"'})
    assert resp.status_code == 200, resp.text


def test_a_service_without_a_sealing_key_does_not_start(container_factory, make_config):
    config = webhooks_config(make_config)
    config["SEAL"] = {**config["SEAL"], "keys": "", "keys_dir": "", "dev_dir": ""}
    container = container_factory(WebhooksService, config)
    try:
        container.start()
    except ValueError as exc:
        assert "SEAL.keys" in str(exc)
    else:
        raise AssertionError("webhooks started without a sealing key")
