"""The webhooks service's data migrations (kit.migrations runs them once per database).

Sealing needs the service's key, so the list is built from the config at start.
"""
import datetime as dt

from kit.migrations import Migration
from webhooks.sealing import Seal, is_sealed


def sealed_secrets(seal):
    """fix(doc): a subscription's secrets stored in the clear (before sealing), sealed."""

    def fix(doc):
        entries = doc.get("secrets") or []
        if all(is_sealed(entry["secret"]) for entry in entries):
            return None
        return {"secrets": [entry if is_sealed(entry["secret"])
                            else {**entry, "secret": seal.seal(entry["secret"], doc["_id"])}
                            for entry in entries]}

    return fix


def migrations(config):
    """In order. Subscriptions are walked by (created_at, _id), an index the local
    FerretDB build walks."""
    return (
        Migration("subscription_secrets_sealed_v1", "subscriptions", ("secrets",),
                  sealed_secrets(Seal.from_config(config)), walk="created_at",
                  floor=dt.datetime(1, 1, 1, tzinfo=dt.UTC)),
    )
