"""Who hears about an event, on which channel, and when; what a delivery outcome does to a
notification. Pure: callers pass the directory, the opt-outs, the clock.

A notification is keyed by (event id, rule, recipient, channel): the key is the document's
_id, so a redelivered event plans the same keys and inserts nothing new.
"""
import datetime as dt
from dataclasses import dataclass, field

from notify.pacing import quiet_until
from notify.rules import PERSON_CHANNELS, matching

QUEUED, SENT, FAILED, SUPPRESSED = "queued", "sent", "failed", "suppressed"
ALL_CHANNELS = "*"
ADDRESS_OF = {"email": "email", "sms": "phone"}


def notification_key(event_id, rule, recipient, channel):
    return f"{event_id}|{rule}|{recipient}|{channel}"


def owner_of(data, owner_fields):
    return next((data[f] for f in owner_fields if data.get(f)), None)


def _person(person):
    return {"key": f"person:{person['sub']}", "kind": "person", "name": person["name"],
            "locale": person["locale"], "time_zone": person["time_zone"],
            "quiet_hours": person["quiet_hours"], "email": person["email"],
            "phone": person["phone"]}


def _team(name, teams, directory):
    spec = teams.get(name)
    if not spec:
        return None
    return {"key": f"channel:{name}", "kind": "channel", "name": name,
            "locale": spec.get("locale") or directory.defaults["locale"],
            "time_zone": directory.defaults["time_zone"], "quiet_hours": {},
            "channel_kind": spec.get("kind")}


def recipients_of(rule, data, directory, *, owner_fields, teams, customer=None):
    """The rule's recipients for this event's data, each once; who cannot be resolved
    (no owner, no manager, an unknown person or team) is left out."""
    owner = directory.person(owner_of(data, owner_fields))
    found = []
    for spec in rule.recipients:
        if spec == "owner":
            found.append(owner and _person(owner))
        elif spec == "manager":
            manager = owner and directory.person(owner["manager"])
            found.append(manager and _person(manager))
        elif spec == "team":
            found.append(owner and owner["team"] and _team(owner["team"], teams, directory))
        elif spec == "customer":
            found.append(customer and {
                "key": f"customer:{customer['id']}", "kind": "customer",
                "name": customer.get("name") or "", "email": customer.get("email"),
                "phone": customer.get("phone"),
                "locale": customer.get("locale") or directory.defaults["locale"],
                "time_zone": customer.get("time_zone") or directory.defaults["time_zone"],
                "quiet_hours": {}})
        elif spec.startswith("role:"):
            found.extend(_person(p) for p in directory.with_role(spec[5:]))
        elif spec.startswith("person:"):
            person = directory.person(spec[7:])
            found.append(person and _person(person))
        elif spec.startswith("channel:"):
            found.append(_team(spec[8:], teams, directory))
    unique = {}
    for recipient in found:
        if recipient:
            unique.setdefault(recipient["key"], recipient)
    return list(unique.values())


def channels_for(rule, recipient):
    """(channel, address) pairs the rule asks for that this recipient can receive."""
    if recipient["kind"] == "channel":
        kind = recipient.get("channel_kind")
        return [(kind, recipient["name"])] if kind in rule.channels else []
    return [(channel, recipient[ADDRESS_OF[channel]]) for channel in rule.channels
            if channel in PERSON_CHANNELS and recipient.get(ADDRESS_OF[channel])]


def plan(event, rules, directory, *, now, owner_fields, teams, opted_out=frozenset(),
         customer=None):
    """The notifications this event causes: queued (due now, or when the recipient's
    quiet hours end) or suppressed (opted out), each with the first entry of its log."""
    data = event["data"]
    docs = []
    for rule in matching(rules, event["type"], data):
        for recipient in recipients_of(rule, data, directory, owner_fields=owner_fields,
                                       teams=teams, customer=customer):
            for channel, address in channels_for(rule, recipient):
                docs.append(_notification(event, rule, recipient, channel, address, now,
                                          opted_out))
    return docs


def _notification(event, rule, recipient, channel, address, now, opted_out):
    doc = {
        "_id": notification_key(event["id"], rule.name, recipient["key"], channel),
        "event_id": event["id"],  # top level: FerretDB's indexes take no dotted paths
        "event": {k: event.get(k) for k in ("id", "type", "time", "subject", "data")},
        "rule": rule.name, "template": rule.template, "recipient": recipient["key"],
        "recipient_name": recipient["name"], "locale": recipient["locale"],
        "channel": channel, "address": address, "attempts": 0,
        "created_at": now, "updated_at": now,
    }
    if {(recipient["key"], channel), (recipient["key"], ALL_CHANNELS)} & set(opted_out):
        return {**doc, "status": SUPPRESSED, "reason": "opted_out",
                "log": [entry(now, SUPPRESSED, "opted out")]}
    quiet = quiet_until(now, recipient["quiet_hours"], recipient["time_zone"])
    first = entry(now, QUEUED, None)
    log = [first] if quiet is None else [
        first, entry(now, "delayed", f"quiet hours until {quiet.isoformat()}")]
    return {**doc, "status": QUEUED, "due_at": quiet or now, "log": log}


def entry(at, status, detail):
    return {"at": at, "status": status, "detail": detail}


@dataclass
class Outcome:
    """What a delivery attempt does to its notification: fields set and removed, a log
    entry, events for the outbox, and what the metrics count (sent, failed, retried,
    deferred)."""

    counted: str
    set: dict
    unset: tuple = ()
    log: dict = None
    events: list = field(default_factory=list)
    attempted: bool = True


def _event_data(doc, now):
    event = doc["event"]
    return {"notification_id": doc["_id"], "event_id": event["id"],
            "event_type": event["type"], "rule": doc["rule"], "recipient": doc["recipient"],
            "channel": doc["channel"], "attempts": doc["attempts"] + 1}


def sent(doc, now):
    return Outcome(SENT, {"status": SENT, "sent_at": now, "updated_at": now},
                   ("due_at", "claim"), entry(now, SENT, None),
                   [("notification.sent", {**_event_data(doc, now), "sent_at": now})])


def failed(doc, now, reason):
    return Outcome(FAILED, {"status": FAILED, "reason": reason, "failed_at": now,
                            "updated_at": now},
                   ("due_at", "claim"), entry(now, FAILED, reason),
                   [("notification.failed", {**_event_data(doc, now), "reason": reason,
                                             "failed_at": now})])


def retry_or_fail(doc, now, reason, delays_seconds):
    """After a transient failure: again after the next delay, or failed when the delays
    are used up (never retried forever)."""
    attempt = doc["attempts"] + 1
    if attempt > len(delays_seconds):
        return failed(doc, now, f"gave up after {attempt} attempts: {reason}")
    due = now + dt.timedelta(seconds=float(delays_seconds[attempt - 1]))
    return Outcome("retried", {"status": QUEUED, "due_at": due, "reason": reason,
                             "updated_at": now}, ("claim",),
                   entry(now, "retrying", f"{reason}; next attempt {due.isoformat()}"))


def deferred(doc, now, until, why):
    """Not attempted: it waits (the recipient's rate limit)."""
    return Outcome("deferred", {"due_at": until, "updated_at": now}, ("claim",),
                   entry(now, "delayed", f"{why} until {until.isoformat()}"), attempted=False)


def suppressed(doc, now, why):
    return Outcome(SUPPRESSED, {"status": SUPPRESSED, "reason": why, "updated_at": now},
                   ("due_at", "claim"), entry(now, SUPPRESSED, why), attempted=False)
