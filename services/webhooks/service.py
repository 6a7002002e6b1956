"""Webhooks service: nameko entrypoints only; the rules live in subscriptions, deliveries,
ordering and schedule, reading the streams in the intake and the stream reader, sending in
the sender, queries in the store."""
import datetime as dt
import uuid

import amqp
from nameko.dependency_providers import Config

from kit import paging
from kit.auth import caller
from kit.config import setting
from kit.errors import Invalid, NotFound, Unavailable
from kit.fields import utcnow
from kit.http import http, json_body, query_args
from kit.migrations import Migrations
from kit.mongo import Store
from kit.ops import Operational
from kit.preconditions import etag, if_match
from kit.timers import config_timer
from kit.versioned import stale
from webhooks import redelivery, subscriptions
from webhooks import schemas as S
from webhooks.intake import Intake
from webhooks.migrations import migrations as data_migrations
from webhooks.permissions import PERMISSIONS
from webhooks.sealing import SecretSeal
from webhooks.sender import Sender
from webhooks.signing import new_secret
from webhooks.store import WebhooksStore, revision
from webhooks.targets import TargetRefused

TAGS = ["subscriptions"]
SUBSCRIPTION = "/api/v1/subscriptions/<id>"
MISSING = {404: "No such subscription"}
VERSIONED = {**MISSING, 409: "The subscription changed (stale If-Match)",
             428: "If-Match missing"}


class WebhooksService(Operational):
    name = "webhooks"
    permissions = PERMISSIONS

    store = Store(WebhooksStore)
    seal = SecretSeal()
    intake = Intake()
    sender = Sender()
    migrations = Migrations(data_migrations)
    config = Config()

    # --- helpers (no rules: loading, checking the target) --------------------------------

    def _subscription(self, sub_id):
        sub = self.store.get_subscription(sub_id)
        if sub is None:
            raise NotFound(f"No subscription {sub_id}.")
        return sub

    def _check_target(self, url):
        try:
            self.sender.check(url)
        except TargetRefused as exc:
            raise Invalid(f"Webhooks may not go to {url}: {exc}.",
                          errors={"url": [f"{exc}."]}) from None

    def _out(self, sub):
        return 200, etag(revision(sub)), S.SubscriptionOut().dump(
            subscriptions.view(sub, utcnow()))

    # --- subscriptions -------------------------------------------------------------------

    @http("POST", "/api/v1/subscriptions", body=S.SubscriptionIn, response=S.SubscriptionCreated,
          status=201, tags=TAGS, summary="Subscribe a URL to event types (admins); the secret "
          "is shown only in this answer", responses={400: "Invalid fields, or a URL outside "
                                                      "the allow-list"})
    def create_subscription(self, request):
        data = json_body(request, S.SubscriptionIn())
        self._check_target(data["url"])
        secret = data["secret"] or new_secret()
        sub_id = str(uuid.uuid4())
        sub = subscriptions.new_subscription(sub_id, data, self.seal.seal(secret, sub_id),
                                             utcnow())
        self.store.insert_subscription(sub)
        headers = {"Location": f"/api/v1/subscriptions/{sub['_id']}", **etag(0)}
        return 201, headers, S.SubscriptionCreated().dump(
            {**subscriptions.view(sub, utcnow()), "secret": secret})

    @http("GET", "/api/v1/subscriptions", query=S.SubscriptionQuery,
          response=S.SubscriptionPage, tags=TAGS, summary="Subscriptions, oldest first")
    def list_subscriptions(self, request):
        args = query_args(request, S.SubscriptionQuery())
        after = paging.after(args["cursor"]) if args.get("cursor") else None
        rows = self.store.list_subscriptions(args["limit"] + 1, after)
        page, more = rows[:args["limit"]], len(rows) > args["limit"]
        return S.SubscriptionPage().dump({
            "items": [subscriptions.view(s, utcnow()) for s in page],
            "next_cursor": paging.next_cursor(page, more)})

    @http("GET", SUBSCRIPTION, response=S.SubscriptionOut, tags=TAGS,
          summary="One subscription (never its secret)", responses=MISSING)
    def get_subscription(self, request, id):
        return self._out(self._subscription(id))

    @http("PATCH", SUBSCRIPTION, body=S.SubscriptionChange, response=S.SubscriptionOut,
          tags=TAGS, summary="Change a subscription's URL, event types or description, at "
          "the revision its If-Match names",
          responses={**VERSIONED, 400: "Invalid fields, or a URL outside the allow-list"})
    def update_subscription(self, request, id):
        expected = if_match(request)
        data = json_body(request, S.SubscriptionChange(), partial=True)
        self._subscription(id)
        if "url" in data:
            self._check_target(data["url"])
        sub = self.store.update_subscription(id, {**data, "updated_at": utcnow()},
                                             expected=expected)
        if sub is None:
            raise NotFound(f"No subscription {id}.")
        return self._out(sub)

    @http("DELETE", SUBSCRIPTION, status=204, tags=TAGS, responses=MISSING,
          summary="Remove a subscription with its waiting deliveries and its log")
    def delete_subscription(self, request, id):
        if not self.store.delete_subscription(id):
            raise NotFound(f"No subscription {id}.")
        return 204, None

    @http("POST", SUBSCRIPTION + "/rotate", body=S.RotateIn, response=S.RotateOut, tags=TAGS,
          summary="A new secret (shown only here); the old one keeps signing beside it for "
          "the grace period. At the revision its If-Match names, so two rotations at once "
          "cannot drop a secret a receiver was given", responses=VERSIONED)
    def rotate_secret(self, request, id):
        expected = if_match(request)
        data = json_body(request, S.RotateIn())
        sub = self._subscription(id)
        if revision(sub) != expected:
            raise stale(revision(sub), expected, "subscription")
        hours = data["grace_hours"]
        if hours is None:
            hours = float(setting(self.config, "WEBHOOKS.rotation_grace_hours", 24))
        secret = data["secret"] or new_secret()
        now = utcnow()
        secrets, until = subscriptions.rotated(sub, self.seal.seal(secret, id), now,
                                               dt.timedelta(hours=hours))
        after = self.store.update_subscription(id, {"secrets": secrets, "updated_at": now},
                                               expected=expected)
        if after is None:
            raise NotFound(f"No subscription {id}.")
        return 200, etag(revision(after)), S.RotateOut().dump(
            {"id": id, "secret": secret, "previous_valid_until": until})

    @http("POST", SUBSCRIPTION + "/enable", response=S.SubscriptionOut, tags=TAGS,
          summary="Turn a subscription on again: its waiting deliveries go at once",
          responses=MISSING)
    def enable_subscription(self, request, id):
        self._subscription(id)
        now = utcnow()
        sub = self.store.update_subscription(
            id, {"enabled": True, "failures_in_a_row": 0, "enabled_at": now,
                 "updated_at": now},
            unset=("failing_since", "disabled_reason", "disabled_at"))
        self.store.resume(id, now)
        self.sender.poke([id])
        return self._out(sub)

    @http("POST", SUBSCRIPTION + "/disable", response=S.SubscriptionOut, tags=TAGS,
          summary="Turn a subscription off: nothing is sent or queued for it meanwhile",
          responses=MISSING)
    def disable_subscription(self, request, id):
        sub = self._subscription(id)
        if sub["enabled"]:
            who = caller(request, self.config)["sub"]
            fields, event = subscriptions.disabled(sub, f"turned off by {who}", utcnow(),
                                                   automatic=False)
            self.store.disable(sub, fields, event)
        return self._out(self._subscription(id))

    # --- deliveries ----------------------------------------------------------------------

    @http("GET", SUBSCRIPTION + "/deliveries", query=S.DeliveryQuery,
          response=S.DeliveryPage, tags=["deliveries"], responses=MISSING,
          summary="The delivery log of a subscription, newest first, by cursor")
    def list_deliveries(self, request, id):
        args = query_args(request, S.DeliveryQuery())
        after = paging.after(args["cursor"]) if args.get("cursor") else None
        self._subscription(id)
        rows = self.store.deliveries(id, args.get("status"), args["limit"] + 1, after)
        page, more = rows[:args["limit"]], len(rows) > args["limit"]
        return S.DeliveryPage().dump({"items": page,
                                      "next_cursor": paging.next_cursor(page, more)})

    @http("GET", SUBSCRIPTION + "/deliveries/<delivery_id>", response=S.DeliveryOut,
          tags=["deliveries"], summary="One delivery with its attempts",
          responses={404: "No such subscription or delivery"})
    def get_delivery(self, request, id, delivery_id):
        doc = self.store.get_delivery(delivery_id)
        if doc is None or doc["subscription_id"] != id:
            raise NotFound(f"No delivery {delivery_id} of subscription {id}.")
        return S.DeliveryOut().dump(doc)

    @http("POST", SUBSCRIPTION + "/redeliver", body=S.RedeliverIn, response=S.RedeliverOut,
          tags=["deliveries"], summary="Send the subscription's events of a time range "
          "again, read from the streams (as long as they keep them)",
          responses={**MISSING, 400: "Invalid range"})
    def redeliver(self, request, id):
        data = json_body(request, S.RedeliverIn())
        sub = self._subscription(id)
        now = utcnow()
        until = data["until"] or now
        if data["since"] >= now:
            raise Invalid("The range starts in the future.",
                          errors={"since": ["Must be in the past."]})
        try:
            events, queued = redelivery.redeliver(self.store, self.config, sub, data["since"],
                                                  until, now)
        except (OSError, amqp.exceptions.AMQPError) as exc:
            raise Unavailable(f"The event streams cannot be read now ({exc}); "
                              "retry.") from None
        self.sender.poke([id])
        return S.RedeliverOut().dump({"events": events, "deliveries": queued,
                                      "since": data["since"], "until": until})

    # --- sending -------------------------------------------------------------------------

    @config_timer("WEBHOOKS.send_interval_seconds", 1)
    def send_due(self):
        """Due deliveries of every subscription: each claimed atomically, sent once."""
        self.sender.send_due(self.store)
