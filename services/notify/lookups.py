"""Asking the owning services for what events do not carry (DESIGN: events carry no
links and little personal data): a customer's contact, and links such as a quote's
acceptance, a contract's signing or a ticket's CSAT survey.

NOTIFY.customers maps an event type to a URL template, NOTIFY.links maps an event type to
{link name: URL template}; templates are filled from the event's data (`{quote_id}`) and
the owning services' base URLs (NOTIFY.services: `{quotes}`, `{support}`), and the answer
is JSON ({id, name, email, phone, locale, time_zone} for a customer, {url} for a link).
Where no URL is configured the customer is not notified and the link is left out of the
message. A 404 means none; a failure that may pass (5xx, timeout) is Retryable.

The owning services want a bearer token with the `integration` role: `lookup_token` picks
its source (StaticToken, FileToken or MintedToken).
"""
import datetime as dt
import logging
import os
import threading

import requests

from kit.errors import Retryable

log = logging.getLogger(__name__)


class Lookups:
    def __init__(self, customers=None, links=None, timeout=5.0, token=None, services=None):
        self.customers = dict(customers or {})
        self.links = dict(links or {})
        self.timeout = timeout
        self.services = {k: str(v).rstrip("/") for k, v in (services or {}).items()}
        # the owning services need a token (security is on): an integration's; a string,
        # or a source whose current() renews or re-reads it
        self.token = token if token is None or hasattr(token, "current") \
            else StaticToken(token)

    @property
    def headers(self):
        token = self.token.current() if self.token else None
        return {"Authorization": f"Bearer {token}"} if token else {}

    def wants_customer(self, event_type):
        return event_type in self.customers

    def customer(self, event):
        template = self.customers.get(event["type"])
        if not template:
            return None
        answer = self._get(template, event)
        if answer is None:
            return None
        return {"id": answer.get("id") or event["subject"], **answer}

    def links_for(self, event):
        found = {}
        for name, template in (self.links.get(event["type"]) or {}).items():
            answer = self._get(template, event)
            if answer and answer.get("url"):
                found[name] = answer["url"]
        return found

    def url(self, template, event):
        """The template filled from the event's data and the owners' base URLs (None when
        it names something the event lacks)."""
        try:
            return template.format(**{**event["data"], "subject": event["subject"],
                                      **self.services})
        except (KeyError, IndexError, ValueError):
            log.warning("lookup URL %s does not fit a %s event", template, event["type"])
            return None

    def _get(self, template, event):
        url = self.url(template, event)
        if url is None:
            return None
        try:
            resp = requests.get(url, timeout=self.timeout, headers=self.headers)
        except requests.RequestException as exc:
            raise Retryable(f"{url}: {type(exc).__name__}") from None
        if resp.status_code == 404:
            return None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise Retryable(f"{url} answered {resp.status_code}")
        if not resp.ok:
            log.warning("lookup %s answered %s", url, resp.status_code)
            return None
        return resp.json()


class StaticToken:
    """A token given in the configuration (NOTIFY_LOOKUP_TOKEN)."""

    def __init__(self, token):
        self.token = token

    def current(self):
        return self.token


class FileToken:
    """A token in a file, read again whenever the file changes: a mounted Secret that
    whoever holds the identity provider's credentials rotates, taken without a restart."""

    def __init__(self, path):
        self.path = path
        self._seen = (None, None)

    def current(self):
        try:
            stamp = os.stat(self.path).st_mtime_ns
        except OSError as exc:
            log.warning("lookup token file %s: %s", self.path, exc)
            return None
        seen, token = self._seen
        if stamp != seen:
            with open(self.path, encoding="utf-8") as fh:
                token = fh.read().strip() or None
            self._seen = (stamp, token)
        return token


class MintedToken:
    """A short-lived integration token notify signs itself with the private key of the
    identity provider the services trust: for development and tests only, where that
    provider is a key pair on disk (kit.devtokens, var/auth). It is renewed when a third
    of its life is left, so no token outlives `ttl`, and none is stored anywhere."""

    def __init__(self, key_file, *, sub, issuer, audience, ttl_seconds, clock=None):
        from kit import devtokens  # only where it is used: deployments never mint

        self._mint = devtokens.mint
        with open(key_file, "rb") as fh:
            self.key = fh.read()
        self.sub, self.issuer, self.audience = sub, issuer, audience
        self.ttl = dt.timedelta(seconds=float(ttl_seconds))
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._lock = threading.Lock()
        self._token = (None, None)

    def current(self):
        now = self.clock()
        token, renew_at = self._token
        if token is None or now >= renew_at:
            with self._lock:
                token, renew_at = self._token
                if token is None or now >= renew_at:
                    token = self._mint(self.key, self.sub, ["integration"], issuer=self.issuer,
                                       audience=self.audience, ttl=self.ttl, now=now)
                    self._token = (token, now + self.ttl * 2 / 3)
        return token


def lookup_token(settings, auth):
    """The token source NOTIFY configures (the first of: lookup_token, lookup_token_file,
    lookup_signing_key_file), or None."""
    if settings.get("lookup_token"):
        return StaticToken(str(settings["lookup_token"]))
    if settings.get("lookup_token_file"):
        return FileToken(str(settings["lookup_token_file"]))
    if settings.get("lookup_signing_key_file"):
        return MintedToken(str(settings["lookup_signing_key_file"]), sub="system:notify",
                           issuer=str(auth.get("issuer") or "dealflow"),
                           audience=str(auth.get("audience") or "dealflow"),
                           ttl_seconds=settings.get("lookup_token_ttl_seconds") or 600)
    return None
