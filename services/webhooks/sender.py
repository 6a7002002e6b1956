"""The sender as a nameko dependency: the retry policy, the HTTP client and the metrics,
and the path a due delivery takes: claimed, its target checked, signed, posted, its
outcome recorded, the subscription's failure run counted (and the subscription turned off
when the run is too long).

Per subscription, each round sends the first waiting delivery of every entity
(webhooks.ordering), in parallel; the next round follows once those are recorded, so one
entity's events arrive one after the other, in sequence order.
"""
import datetime as dt
import logging
import socket
import time
from urllib.parse import urlsplit

import eventlet
from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Histogram

from kit.config import setting
from kit.fields import utcnow
from kit.leases import write_within_lease
from kit.prom import PromRegistry
from webhooks import deliveries, ordering, schedule, subscriptions, transport
from webhooks.sealing import Seal, SealBroken
from webhooks.signing import signed_headers
from webhooks.targets import TargetRefused, check_target

log = logging.getLogger(__name__)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
GONE_REASON = "the endpoint answered 410 Gone"


def resolve(url):
    """The addresses the URL's host resolves to (none when it does not)."""
    # ValueError: a host IDNA cannot encode, or a port urllib refuses (:99999) in a URL
    # stored before the schema checked ports; either would stop the sender's round
    try:
        parts = urlsplit(url)
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, ValueError):
        return []
    return list(dict.fromkeys(info[4][0] for info in infos))  # the resolver's preference


class Sender(DependencyProvider):
    prom = PromRegistry()

    def setup(self):
        config = self.container.config
        self.clock = utcnow
        self.policy = schedule.RetryPolicy.from_config(setting(config, "WEBHOOKS.retry"))
        self.allow = list(setting(config, "WEBHOOKS.allow") or [])
        self.development = bool(setting(config, "WEBHOOKS.development", False))
        self.batch = int(setting(config, "WEBHOOKS.send_batch", 100))
        self.concurrency = int(setting(config, "WEBHOOKS.send_concurrency", 20))
        self.lease = float(setting(config, "WEBHOOKS.lease_seconds", 60))
        self.timeout = (float(setting(config, "WEBHOOKS.connect_timeout_seconds", 3)),
                        float(setting(config, "WEBHOOKS.read_timeout_seconds", 10)))
        self.keep = int(setting(config, "WEBHOOKS.log_attempts", 50))
        self.seal = Seal.from_config(config)
        self.recheck = dt.timedelta(seconds=float(setting(
            config, "WEBHOOKS.recheck_seconds", 30)))
        self.asleep = {}  # subscription id -> when its first waiting delivery is due

    def start(self):
        registry = self.prom.registry
        self.counted = Counter(
            "dealflow_webhook_deliveries_total",
            "Webhook delivery attempts by subscription and outcome (delivered, retry, "
            "failed: given up or refused, gone: the endpoint answered 410)",
            ["subscription", "outcome"], registry=registry)
        self.latency = Histogram(
            "dealflow_webhook_request_seconds",
            "How long a webhook endpoint took to answer, by subscription",
            ["subscription"], buckets=LATENCY_BUCKETS, registry=registry)
        self.disabled = Counter(
            "dealflow_webhook_subscriptions_disabled_total",
            "Subscriptions turned off by their failure run or a 410", ["subscription"],
            registry=registry)

    def get_dependency(self, worker_ctx):
        return self

    def check(self, url):
        """The addresses `url` may be reached at now; TargetRefused when none may."""
        addresses = resolve(url)
        check_target(url, addresses, allow=self.allow, development=self.development)
        return addresses

    # --- sending -------------------------------------------------------------------------

    def poke(self, sub_ids):
        """New deliveries for these subscriptions: look at them on the next round."""
        for sub_id in sub_ids:
            self.asleep.pop(sub_id, None)

    def send_due(self, store):
        """Every enabled subscription's due deliveries, subscriptions side by side. One
        whose deliveries all wait for retries is not read again until the first is due
        (at most `recheck_seconds`: other instances' intakes and API calls do not poke
        this one): a day-long backlog behind a dead endpoint costs no read per round."""
        pool = eventlet.GreenPool(self.concurrency)
        now = self.clock()
        for sub in store.enabled_subscriptions():
            if self.asleep.get(sub["_id"], now) <= now:
                pool.spawn_n(self.send_subscription, store, sub)
        pool.waitall()

    def send_subscription(self, store, sub):
        pool = eventlet.GreenPool(self.concurrency)
        self.asleep.pop(sub["_id"], None)
        while True:
            now = self.clock()
            waiting = store.waiting(sub["_id"])
            due = ordering.due(waiting, now, self.batch)
            if not due:
                wake = ordering.next_due(waiting)
                if wake is not None:
                    self.asleep[sub["_id"]] = min(wake, now + self.recheck)
                return
            verdicts = list(pool.imap(lambda d: self.attempt(store, sub, d["_id"]), due))
            if schedule.GONE in verdicts or "disabled" in verdicts:
                return

    def attempt(self, store, sub, delivery_id):
        """One attempt at a due delivery, if this instance claims it; its verdict."""
        now = self.clock()
        doc = store.claim(delivery_id, now, self.lease)
        if doc is None:
            return None
        status, error, seconds = self.post(sub, doc, now)
        verdict, sets, unset, entry = deliveries.after_attempt(
            doc, status, error, seconds, self.clock(), self.policy)
        if not self._record(store, doc, (sets, unset, entry), now):
            return None  # the lease ran out and another instance took it over
        self.counted.labels(sub["_id"], verdict).inc()
        if verdict == schedule.DELIVERED:
            store.succeeded(sub["_id"])
            return verdict
        if verdict == schedule.GONE:
            self.turn_off(store, sub, GONE_REASON)
            return verdict
        after = store.failed_attempt(sub["_id"], self.clock())
        if after is not None and after.get("enabled") and schedule.should_disable(
                self.policy, after["failures_in_a_row"], after.get("failing_since"),
                self.clock()):
            self.turn_off(store, after, f"{after['failures_in_a_row']} failed attempts in "
                                        "a row")
            return "disabled"
        return verdict

    def _record(self, store, doc, outcome, claimed_at):
        """Write the attempt's outcome within the claim's lease (kit.leases): a delivery
        the receiver took is sent again only if its outcome could not be written within
        the lease. Every outcome ends the claim."""
        return write_within_lease(lambda: store.record(doc, *outcome, self.keep), claimed_at,
                                  self.lease, clock=self.clock,
                                  what=f"delivery {doc['_id']}: outcome")

    def turn_off(self, store, sub, reason):
        current = store.get_subscription(sub["_id"]) or sub
        fields, event = subscriptions.disabled(current, reason, self.clock(), automatic=True)
        if store.disable(current, fields, event):
            log.warning("webhook subscription %s turned off: %s", sub["_id"], reason)
            self.disabled.labels(sub["_id"]).inc()

    def post(self, sub, doc, now):
        """(HTTP status or None, error or None, seconds) of one signed POST."""
        started = time.perf_counter()
        try:
            address = self.check(sub["url"])[0]
            body = doc["body"].encode("utf-8")
            secrets = [self.seal.unseal(s, sub["_id"])
                       for s in subscriptions.secrets_in_force(sub, now)]
            headers = signed_headers(secrets, doc["_id"], now, body)
            status = transport.post(sub["url"], address, body, headers, self.timeout)
        except TargetRefused as exc:
            return None, f"target refused: {exc}", None
        except SealBroken as exc:
            log.error("webhook subscription %s cannot sign: %s", sub["_id"], exc)
            return None, f"secret cannot be opened: {exc}", None
        except transport.NoAnswer as exc:
            return None, str(exc)[:500], time.perf_counter() - started
        seconds = time.perf_counter() - started
        self.latency.labels(sub["_id"]).observe(seconds)
        return status, None if 200 <= status < 300 else f"HTTP {status}", seconds
