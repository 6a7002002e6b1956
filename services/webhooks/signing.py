"""Standard Webhooks signatures (https://www.standardwebhooks.com/, spec v1): what a
receiver verifies with any of the spec's libraries.

Each delivery carries `webhook-id` (the same on every retry of it, so the receiver drops
repeats), `webhook-timestamp` (whole seconds) and `webhook-signature`: `v1,<base64 of
HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, one per secret in force, separated by
spaces, so a receiver keeps working while a secret is rotated.
"""
import base64
import hashlib
import hmac
import math
import secrets
import uuid

SECRET_PREFIX = "whsec_"
# the spec asks for 24 to 64 random bytes
SECRET_BYTES = 32


class BadSecret(ValueError):
    pass


def new_secret():
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret):
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise BadSecret("a webhook secret is whsec_ and base64") from None
    if not 24 <= len(key) <= 64:
        raise BadSecret("a webhook secret holds 24 to 64 bytes")
    return key


def check_secret(secret):
    """Raise BadSecret unless `secret` can sign."""
    _key(secret)


def message_id(subscription_id, event_id):
    """One id per (subscription, event): stable across retries and redeliveries, distinct
    for two subscriptions that share an endpoint."""
    return "msg_" + uuid.uuid5(uuid.UUID(subscription_id), event_id).hex


def signature(secret, msg_id, timestamp, body):
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secrets_in_force, msg_id, sent_at, body):
    """The headers of one attempt; `body` is the exact bytes sent, `sent_at` an aware
    datetime (the attempt's time: receivers refuse timestamps more than minutes off)."""
    if not secrets_in_force:
        raise BadSecret("a subscription needs a secret")
    timestamp = str(math.floor(sent_at.timestamp()))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": " ".join(
            signature(secret, msg_id, timestamp, body) for secret in secrets_in_force),
        "content-type": "application/json",
    }
