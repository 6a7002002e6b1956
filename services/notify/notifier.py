"""The notify engine as a nameko dependency: rules, templates and the people directory
loaded once from configuration, the channels, the metrics, and the two paths that use
them: an event becomes planned notifications (`on_event`), and a due notification is
claimed, rendered, sent and its outcome recorded (`deliver`).

`clock` is injectable: tests set it to move through quiet hours and retry delays.
"""
import datetime as dt
import logging
import time
from email.errors import HeaderParseError
from email.headerregistry import Address
from pathlib import Path

import yaml
from eventlet.semaphore import Semaphore
from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Histogram

from kit import people
from kit.config import setting
from kit.errors import Invalid, Retryable
from kit.events import dump_data
from kit.fields import rfc3339, utcnow
from kit.leases import write_within_lease
from kit.links import Keyring
from kit.prom import PromRegistry
from notify import chat, domain, mail, sms
from notify.failures import DeliveryFailure, Permanent, Transient
from notify.lookups import Lookups, lookup_token
from notify.pacing import rate_window
from notify.people import Directory
from notify.rules import effective, parse_rules
from notify.templates import TemplateFailure, Templates

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
UNSUBSCRIBE = "notify.unsubscribe"  # the links' purpose: no other link can unsubscribe
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400)


def read_yaml(path):
    path = Path(path)
    if not path.is_absolute():
        path = HERE / path
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


class Notifier(DependencyProvider):
    prom = PromRegistry()

    def setup(self):
        config = self.container.config
        self.config = config
        self.clock = utcnow
        self.templates = Templates(read_yaml(setting(config, "NOTIFY.templates_file")),
                                   setting(config, "NOTIFY.default_locale", "zh-CN"))
        self.configured_rules = parse_rules(read_yaml(setting(config, "NOTIFY.rules_file")),
                                            self.templates.templates)
        self.rules_refresh = float(setting(config, "NOTIFY.rules_refresh_seconds", 5))
        self._rules = (float("-inf"), self.configured_rules)
        # one reader per refresh: without it each of up to max_workers workers that found
        # the rules stale read and compiled them again (about 35 reads per refresh seen)
        self._rules_read = Semaphore()
        quiet = setting(config, "NOTIFY.default_quiet_hours") or {}
        self.person_defaults = {
            "locale": setting(config, "NOTIFY.default_locale", "zh-CN"),
            "time_zone": setting(config, "NOTIFY.default_time_zone", "Asia/Shanghai"),
            "quiet_hours": {k: v for k, v in quiet.items() if v}}
        self._people = (None, None)
        self.directory()  # a directory with a bad time zone or quiet hours stops the start
        self.owner_fields = tuple(setting(config, "NOTIFY.owner_fields",
                                           ["owner_id", "agent_id", "approver_id"]))
        self.teams = setting(config, "CHANNELS.teams") or {}
        self.channels = setting(config, "CHANNELS") or {}
        rate = setting(config, "NOTIFY.rate_limit") or {}
        self.rate = (int(rate.get("count") or 0), float(rate.get("per_seconds") or 3600))
        self.retry_delays = list(setting(config, "NOTIFY.retry_delays_seconds",
                                             [5, 30, 120, 600, 1800, 3600]))
        self.lease = float(setting(config, "NOTIFY.lease_seconds", 60))
        self.batch = int(setting(config, "NOTIFY.delivery_batch_size", 100))
        self.public_url = str(setting(config, "NOTIFY.public_url",
                                      "http://127.0.0.1:8006")).rstrip("/")
        self.links = Keyring.from_config(config)
        self.unsubscribe_days = float(setting(config, "NOTIFY.unsubscribe_days", 365))
        token = lookup_token(setting(config, "NOTIFY") or {}, setting(config, "AUTH") or {})
        if token is None and setting(config, "NOTIFY.customers"):
            log.warning("NOTIFY has no lookup token: the owning services will refuse the "
                        "customer look-ups, and customers get no mail")
        self.lookups = Lookups(setting(config, "NOTIFY.customers"),
                               setting(config, "NOTIFY.links"),
                               float(setting(config, "NOTIFY.lookup_timeout_seconds", 5)),
                               token, setting(config, "NOTIFY.services"))

    def start(self):
        # the container's registry is set up by then (shared extensions may set up later)
        registry = self.prom.registry
        self.counted = Counter(
            "dealflow_notifications_total",
            "Notifications by channel, rule and outcome (sent, failed, suppressed, retried)",
            ["channel", "rule", "outcome"], registry=registry)
        self.latency = Histogram(
            "dealflow_notification_latency_seconds",
            "From the event's time to the notification's send, by channel",
            ["channel"], buckets=LATENCY_BUCKETS, registry=registry)

    def get_dependency(self, worker_ctx):
        return self

    def rules(self, store, fresh=False):
        """The rules in force: the configured ones with the admin API's laid over them,
        read again at most every NOTIFY.rules_refresh_seconds (so every instance takes a
        change within that time)."""
        asked = time.monotonic()
        read_at, rules = self._rules
        if not fresh and asked - read_at < self.rules_refresh:
            return rules
        with self._rules_read:
            read_at, rules = self._rules
            # what another worker read meanwhile will do: for `fresh`, a read that began
            # after this call did
            due = read_at <= asked if fresh else asked - read_at >= self.rules_refresh
            if due:
                began = time.monotonic()
                rules = effective(self.configured_rules, store.stored_rules(),
                                  self.templates.templates)
                self._rules = (began, rules)
        return rules

    def directory(self):
        """The people directory as notify reads it, rebuilt when kit.people reloaded the
        file; a reloaded file that notify cannot use keeps the last good one."""
        shared = people.directory(self.config)
        seen, built = self._people
        if shared is not seen:
            try:
                built = Directory(shared.people, **self.person_defaults)
            except Invalid as exc:
                if built is None:
                    raise
                log.error("people directory not taken: %s", exc.detail)
            self._people = (shared, built)
        return built

    # --- an event in ---------------------------------------------------------------------

    def on_event(self, store, event):
        """Plan and store this event's notifications, then send those due now. Returns
        the keys inserted (none for a redelivered event)."""
        now = self.clock()
        rules = self.rules(store)
        if not any(rule.event == event["type"] and rule.enabled for rule in rules):
            return []
        event = as_stored(event)
        customer = (self.lookups.customer(event)
                    if self.lookups.wants_customer(event["type"]) else None)
        directory = self.directory()
        docs = domain.plan(event, rules, directory, now=now,
                           owner_fields=self.owner_fields, teams=self.teams,
                           customer=customer)
        if not docs:
            return []
        opted_out = store.opted_out([d["recipient"] for d in docs])
        if opted_out:  # planned again with what the store knows
            docs = domain.plan(event, rules, directory, now=now,
                               owner_fields=self.owner_fields, teams=self.teams,
                               customer=customer, opted_out=opted_out)
        inserted = store.insert_planned(docs, now, self.lease)
        for doc in inserted:
            if doc["status"] == domain.SUPPRESSED:
                self.counted.labels(doc["channel"], doc["rule"], domain.SUPPRESSED).inc()
        for doc in inserted:
            if doc.get("claim"):  # due now, claimed as it was inserted
                # (opt-outs were read for the plan a moment ago)
                self._deliver_claimed(store, doc, now, opted_out)
        return [doc["_id"] for doc in inserted]

    # --- delivery ------------------------------------------------------------------------

    def deliver_due(self, store):
        sent = 0
        store.drop_old_windows(self.clock())
        for key in store.due(self.clock(), self.batch):
            sent += bool(self.deliver(store, key))
        return sent

    def deliver(self, store, key):
        """One attempt at a due notification, if this instance claims it."""
        now = self.clock()
        doc = store.claim(key, now, self.lease)
        if doc is None:
            return None
        return self._deliver_claimed(store, doc, now,
                                     store.opted_out([doc["recipient"]]))

    def _deliver_claimed(self, store, doc, now, opted_out):
        outcome = self._attempt(store, doc, now, opted_out)
        done = self.clock()
        if self._record(store, doc, outcome, now):
            self.counted.labels(doc["channel"], doc["rule"], outcome.counted).inc()
            if outcome.counted == domain.SENT:
                self.latency.labels(doc["channel"]).observe(
                    max((done - _event_time(doc, done)).total_seconds(), 0.0))
        return outcome

    def _record(self, store, doc, outcome, claimed_at):
        """Write the outcome within the claim's lease (kit.leases): each outcome ends the
        claim."""
        return write_within_lease(lambda: store.record(doc, outcome), claimed_at, self.lease,
                                  clock=self.clock, what=f"notification {doc['_id']}: outcome")

    def _attempt(self, store, doc, now, opted_out):
        if {(doc["recipient"], doc["channel"]), (doc["recipient"], domain.ALL_CHANNELS)} \
                & opted_out:
            return domain.suppressed(doc, now, "opted out")
        count, per = self.rate
        if count:
            window = rate_window(now, per)
            # an attempt takes a slot whether it then succeeds or not: a recipient (and a
            # provider) is spared a burst of retries too
            if not store.take_slot(doc["recipient"], doc["channel"], window, count):
                return domain.deferred(doc, now, window[1], "rate limit")
        try:
            self.send(doc)
        except DeliveryFailure as exc:
            log.info("notification %s: %s", doc["_id"], exc.reason)
            if exc.permanent:
                return domain.failed(doc, self.clock(), exc.reason)
            return domain.retry_or_fail(doc, self.clock(), exc.reason, self.retry_delays)
        return domain.sent(doc, self.clock())

    def unsubscribe_url(self, doc):
        expires = self.clock() + dt.timedelta(days=self.unsubscribe_days)
        token = self.links.sign(UNSUBSCRIBE, doc["recipient"], expires,
                                {"c": doc["channel"]})
        return f"{self.public_url}/api/v1/unsubscribe/{token}"

    def unsubscribe_target(self, token):
        """(recipient, channel) of a signed unsubscribe link, or kit.links' refusal."""
        claims = self.links.verify(token, UNSUBSCRIBE, utcnow())
        return claims.subject, claims.data["c"]

    def render(self, doc, links=None, unsubscribe_url=None):
        event = doc["event"]
        context = {"event": {k: event.get(k) for k in ("id", "type", "time", "subject")},
                   "data": event.get("data") or {},
                   "recipient": {"name": doc.get("recipient_name"), "locale": doc["locale"]},
                   "links": links or {},
                   "unsubscribe_url": unsubscribe_url or self.unsubscribe_url(doc)}
        return self.templates.render(doc["template"], doc["locale"], context)

    def send(self, doc):
        try:
            links = self.lookups.links_for(doc["event"])
        except Retryable as exc:
            raise Transient(f"link lookup: {exc}") from None
        unsubscribe = self.unsubscribe_url(doc)  # one link id, in the body and the header
        try:
            rendered = self.render(doc, links, unsubscribe)
        except TemplateFailure as exc:
            raise Permanent(exc.detail) from None
        channel = doc["channel"]
        if channel == "email":
            settings = self.channels["email"]
            msg = mail.build_message(settings, doc["_id"], _address(doc), rendered,
                                     unsubscribe)
            mail.send_email(settings, msg)
        elif channel == "sms":
            if "sms" not in rendered:
                raise Permanent(f"template {doc['template']} has no sms part")
            sms.send_sms(self.channels["sms"], doc["address"], rendered["sms"])
        elif channel in ("dingtalk", "wecom"):
            team = self.teams.get(doc["address"])
            if not team or not team.get("webhook"):
                raise Permanent(f"no webhook for team channel {doc['address']}")
            timeout = float((self.channels.get(channel) or {}).get("timeout_seconds") or 10)
            (chat.send_dingtalk if channel == "dingtalk" else chat.send_wecom)(
                team, rendered, timeout)
        else:
            raise Permanent(f"unknown channel {channel}")


def _address(doc):
    """`Name <address>` for a person; an address that does not parse never will."""
    try:
        return str(Address(display_name=doc.get("recipient_name") or "",
                           addr_spec=doc["address"]))
    except (HeaderParseError, ValueError, IndexError) as exc:
        raise Permanent(f"invalid address: {exc}") from None


def as_stored(event):
    """The event as its producer published it (JSON values: money as decimal strings,
    times as RFC 3339), from what the consumer loaded (Decimal, datetime): MongoDB takes
    no Decimal, and templates see the event as subscribers read it."""
    data = dump_data(event["type"], event["data"])
    when = event.get("time")
    return {**event, "data": data,
            "time": rfc3339(when) if isinstance(when, dt.datetime) else when}


def _event_time(doc, default):
    try:
        return dt.datetime.fromisoformat(doc["event"]["time"])
    except (KeyError, TypeError, ValueError):
        return default
