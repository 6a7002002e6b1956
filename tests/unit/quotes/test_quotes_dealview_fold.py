"""A batch of deal events folds into one change per deal, the same as applying them one by
one in any order: the newest facts of the highest sequence, the gaps of the lowest."""
import datetime as dt
import itertools

from quotes import dealview

T = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def event(etype, deal_id, sequence, **data):
    return {"type": etype, "sequence": sequence, "data": {"deal_id": deal_id, **data}}


CREATED = event("deal.created", "d1", 1, pipeline_id="p", stage="discovery", name="Acme",
                owner_id="u1", created_at=T)
MOVED = event("deal.stage_changed", "d1", 2, pipeline_id="p", from_stage="discovery",
              to_stage="proposal")
WON = event("deal.won", "d1", 3, pipeline_id="p", account="Acme Ltd", owner_id="u2")
OTHER = event("deal.updated", "d2", 4, pipeline_id="p", stage="proposal", owner_id="u3")


def apply_one_by_one(events):
    """The view as project_deal builds it, event by event."""
    views = {}
    for e in events:
        newest, gaps = dealview.facts(e["type"], e["data"])
        view = views.setdefault(e["data"]["deal_id"], {"sequence": 0})
        if e["sequence"] > view["sequence"]:
            view.update(newest, sequence=e["sequence"])
        for k, v in gaps.items():
            if view.get(k) is None:
                view[k] = v
    return views


def apply_folded(events):
    views = {}
    for deal_id, sequence, newest, gaps in dealview.fold(events):
        view = {**newest, "sequence": sequence}
        views[deal_id] = {**gaps, **view}
    return views


def test_one_change_per_deal():
    folded = dealview.fold([WON, CREATED, OTHER, MOVED])
    assert [(d, s) for d, s, _, _ in folded] == [("d1", 3), ("d2", 4)]
    _, _, newest, gaps = folded[0]
    assert newest == {"pipeline_id": "p", "status": "won", "stage": "won"}
    assert gaps == {"name": "Acme", "owner_id": "u1", "created_at": T}


def test_folding_equals_applying_in_sequence_order():
    events = [CREATED, MOVED, WON, OTHER]
    assert apply_folded(events) == apply_one_by_one(events)
    for order in itertools.permutations(events):
        assert apply_folded(list(order)) == apply_folded(events)
