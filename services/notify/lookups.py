"""Asking the owning services for what events do not carry (DESIGN: events carry no
links and little personal data): a customer's contact, and links such as a quote's
acceptance, a contract's signing or a ticket's CSAT survey.

The hook: NOTIFY.customers maps an event type to a URL template, NOTIFY.links maps an
event type to {link name: URL template}; templates are filled from the event's data
(`{quote_id}`), and the answer is JSON ({email, phone, locale, name} for a customer,
{url} for a link). Where no URL is configured (those routes do not exist yet) the
customer is not notified and the link is left out of the message. A 404 means none; a
failure that may pass (5xx, timeout) is Retryable.
"""
import logging

import requests

from kit.errors import Retryable

log = logging.getLogger(__name__)


class Lookups:
    def __init__(self, customers=None, links=None, timeout=5.0):
        self.customers = dict(customers or {})
        self.links = dict(links or {})
        self.timeout = timeout

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

    def _get(self, template, event):
        try:
            url = template.format(**event["data"], subject=event["subject"])
        except (KeyError, IndexError, ValueError):
            log.warning("lookup URL %s does not fit a %s event", template, event["type"])
            return None
        try:
            resp = requests.get(url, timeout=self.timeout)
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
