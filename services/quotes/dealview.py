"""The quotes service's own view of deals, from deal.* events (no calls to the deals
service): what a quote needs to know about its deal, namely that it exists, whether it is
open, and its name (the customer's default name on a quote).

Events may arrive out of order (a redelivery, a retry, the separate deal.lost queue): the
view keeps the facts of the newest event by the deal's sequence; the name and owner, which
only deal.created carries in full, fill in whatever is still missing when an older event
comes late. A batch of events folds into one change per deal (`fold`).
"""
WON, LOST = "won", "lost"


def facts(etype, data):
    """(newest facts, facts that only fill gaps) of one deal event."""
    newest = {"pipeline_id": data.get("pipeline_id")}
    gaps = {}
    if etype == "deal.created":
        newest.update(status="open", stage=data["stage"])
        gaps.update(name=data["name"], owner_id=data.get("owner_id"),
                    created_at=data["created_at"])
    elif etype == "deal.stage_changed":
        to = data["to_stage"]
        newest.update(stage=to, status=to if to in (WON, LOST) else "open")
    elif etype == "deal.won":
        newest.update(status=WON, stage=WON)
        gaps.update(name=data.get("account"), owner_id=data.get("owner_id"))
    elif etype == "deal.lost":
        newest.update(status=LOST, stage=LOST)
    elif etype == "deal.updated":
        # the stage says whether the deal is open: a view that an update reaches before
        # deal.created (each type has its own queue) must know it, or quotes fail on it
        stage = data["stage"]
        newest.update(stage=stage, status=stage if stage in (WON, LOST) else "open",
                      owner_id=data.get("owner_id"))
    return {k: v for k, v in newest.items() if v is not None}, \
        {k: v for k, v in gaps.items() if v is not None}


def fold(events):
    """[(deal id, sequence, newest facts, gap facts)] of a batch of deal events, one per
    deal: the newest facts of its highest-sequence event, and the gaps of all of them
    (the lowest sequence's value first, as if they had been applied in order)."""
    by_deal = {}
    for event in sorted(events, key=lambda e: e["sequence"]):
        deal_id = event["data"]["deal_id"]
        newest, gaps = facts(event["type"], event["data"])
        _, _, _, known = by_deal.get(deal_id, (None, None, None, {}))
        by_deal[deal_id] = (deal_id, event["sequence"], newest, {**gaps, **known})
    return list(by_deal.values())
