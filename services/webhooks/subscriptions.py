"""A subscription's rules, pure: its document, the secrets that sign now, a rotation,
which events it takes, and what turning it off writes and emits."""
import datetime as dt

from kit.fields import to_utc


def new_subscription(sub_id, data, secret, now):
    return {
        "_id": sub_id,
        "url": data["url"],
        "event_types": list(data["event_types"]),
        "description": data.get("description"),
        "secrets": [{"secret": secret, "expires_at": None}],
        "enabled": True,
        "failures_in_a_row": 0,
        "created_at": now,
        "enabled_at": now,
        "updated_at": now,
    }


def secrets_in_force(sub, now):
    """The secrets that sign a delivery now: the current one, and a rotated one until its
    grace period ends (a receiver verifies with whichever it holds)."""
    return [s["secret"] for s in sub.get("secrets") or ()
            if s.get("expires_at") is None or to_utc(s["expires_at"]) > now]


def rotated(sub, secret, now, grace):
    """The secrets after a rotation to `secret`: the ones still in force sign on for
    `grace` (no longer than they would have), expired ones are dropped."""
    until = now + grace
    kept = []
    for entry in sub.get("secrets") or ():
        expires = to_utc(entry.get("expires_at"))
        if expires is not None and expires <= now:
            continue
        if grace > dt.timedelta(0):
            kept.append({"secret": entry["secret"],
                         "expires_at": until if expires is None else min(expires, until)})
    return [{"secret": secret, "expires_at": None}, *kept], (until if kept else None)


def takes(sub, event, event_time):
    """Whether the intake gives `sub` this event: a type it names, that happened while it
    was on (since it was made or last turned on; what came before is the redelivery
    API's). By the event's time, not by when the intake reads it: an intake that read
    nothing while no subscription was on reads a turned-on one's first events late."""
    return (sub.get("enabled", True) and event["type"] in sub["event_types"]
            and event_time >= enabled_since(sub))


def enabled_since(sub):
    """When `sub` was made or last turned on: its events are those from then on."""
    return to_utc(sub.get("enabled_at") or sub["created_at"])


def disabled(sub, reason, now, *, automatic):
    """(fields to set, the event) when `sub` is turned off."""
    fields = {"enabled": False, "disabled_reason": reason, "disabled_at": now,
              "updated_at": now}
    event = ("webhook.subscription_disabled", {
        "subscription_id": sub["_id"], "reason": reason, "automatic": automatic,
        "failures_in_a_row": int(sub.get("failures_in_a_row") or 0),
        "failing_since": to_utc(sub.get("failing_since")), "disabled_at": now})
    return fields, event


def view(sub, now):
    """The subscription as the API shows it: never its secrets."""
    out = {k: v for k, v in sub.items() if k != "secrets"}
    out["secrets_in_force"] = len(secrets_in_force(sub, now))
    return out
