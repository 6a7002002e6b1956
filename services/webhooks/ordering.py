"""Per-subscription order: one entity's events reach a subscriber in `dealflowsequence`
order, and a delivery waiting for its retry holds back the later events of its entity
(not those of other entities). A subscription filters by event type, so an entity's
sequences have gaps by design: order is among the deliveries it has, not a count."""


def _heads(pending):
    first = {}
    for delivery in pending:
        held = first.get(delivery["subject"])
        if held is None or delivery["sequence"] < held["sequence"]:
            first[delivery["subject"]] = delivery
    return first.values()


def due(pending, now, limit):
    """The deliveries to attempt now, from the subscription's undelivered ones (dicts with
    `subject`, `sequence`, `due_at`): per entity the lowest sequence, if it is due; oldest
    due first, at most `limit`."""
    ready = [d for d in _heads(pending) if d["due_at"] <= now]
    return sorted(ready, key=lambda d: (d["due_at"], d["subject"]))[:limit]


def next_due(pending):
    """When the first of these deliveries becomes due (None when none waits): a later
    sequence waits behind its entity's first, however early its own `due_at`."""
    return min((d["due_at"] for d in _heads(pending)), default=None)
