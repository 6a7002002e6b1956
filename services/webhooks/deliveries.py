"""A delivery's rules, pure: one per (subscription, event), what an attempt's answer
writes, and when it is tried again (webhooks.schedule)."""
from webhooks import schedule
from webhooks.signing import message_id

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def new_delivery(sub, event, body, now):
    """The delivery of `event` (its JSON `body`, as it was in the stream) to `sub`. Its id
    is the webhook-id: the same on every retry and redelivery. While it waits, `queue`
    names its subscription (the sender's index) and `due_at` when it is next tried."""
    return {
        "_id": message_id(sub["_id"], event["id"]),
        "subscription_id": sub["_id"],
        "event_id": event["id"],
        "event_type": event["type"],
        "subject": event["subject"],
        "sequence": int(event.get("dealflowsequence") or event.get("sequence") or 0),
        "body": body,
        "status": PENDING,
        "queue": sub["_id"],
        "due_at": now,
        "attempts": 0,
        "created_at": now,
        "log": [],
    }


def after_attempt(delivery, status, error, seconds, now, policy):
    """(verdict, $set, $unset fields, log entry) for an attempt that got `status` (None:
    no answer, `error` says why). verdict is schedule.DELIVERED, RETRY (tried again
    later), GONE or "failed" (given up)."""
    verdict = schedule.outcome(status)
    entry = {"at": now, "status": status, "outcome": verdict, "error": error,
             "seconds": round(seconds, 4) if seconds is not None else None}
    first = delivery.get("first_attempt_at") or now
    sets = {"first_attempt_at": first, "last_attempt_at": now}
    done = {"queue": "", "due_at": "", "claim": ""}
    if verdict == schedule.DELIVERED:
        return verdict, {**sets, "status": DELIVERED, "delivered_at": now}, done, entry
    if verdict == schedule.RETRY:
        at = schedule.next_attempt(policy, first, delivery.get("attempts", 0) + 1, now)
        if at is not None:
            return verdict, {**sets, "due_at": at}, {"claim": ""}, entry
    # given up after the retry window, or the receiver asked us to stop (410)
    verdict = FAILED if verdict == schedule.RETRY else verdict
    entry["outcome"] = verdict
    return verdict, {**sets, "status": FAILED}, done, entry
