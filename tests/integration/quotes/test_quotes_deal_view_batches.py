"""The quotes service's deal view applies deal events in batches (kit.batches): a batch out
of order and with duplicates gives the view of the newest event, with the name only the
creation carries, as applying them one by one would; projected together (one bulk write),
a batch gives the views one deal at a time gives. Real: RabbitMQ and the configured
MongoDB-protocol server."""
from kit.events import parse_event
from quotes import dealview
from quotes.store import QuotesStore
from tests.integration.quotes.quotes_support import (
    deal_created,
    new_deal_id,
    publish,
    quotes_config,
    stage_changed,
    start_quotes,
    wait_for,
)


def test_a_batch_out_of_order_and_with_duplicates_gives_the_newest_view(
        container_factory, make_config, rabbit_config, mongo_db):
    start_quotes(container_factory, quotes_config(make_config))
    deal, other = new_deal_id(), new_deal_id()
    created, newest = deal_created(deal, name="Acme"), stage_changed(deal, "proposal", 3)
    publish(rabbit_config["AMQP_URI"], newest, created, stage_changed(deal, "needs", 2),
            deal_created(other, name="Other"), created, newest)

    def views():
        return {d["_id"]: d for d in mongo_db.deals.find({"_id": {"$in": [deal, other]}})}

    assert wait_for(lambda: len(views()) == 2 and views()[deal]["sequence"] == 3
                    and views()[deal].get("name"))
    view = views()[deal]
    assert (view["stage"], view["status"], view["name"], view["owner_id"]) == \
        ("proposal", "open", "Acme", "rep-1")
    assert (views()[other]["name"], views()[other]["sequence"]) == ("Other", 1)


def parsed(body):
    envelope, data = parse_event(body)
    return {**envelope, "data": data}


def one_by_one_and_together(mongo_db, history):
    """The views `history` ({deal: events already applied}, then the batch) leaves when the
    batch is projected deal by deal and when it is projected together, on fresh ids."""
    store = QuotesStore(mongo_db)
    out = []
    for together in (False, True):
        ids = {deal: new_deal_id() for deal in history}
        batch = []
        for deal, (before, events) in history.items():
            for event in before:
                store.project_deal(*dealview.fold([_as(event, ids[deal])])[0])
            batch.extend(_as(event, ids[deal]) for event in events)
        if together:
            store.project_deals(dealview.fold(batch))
        else:
            for item in dealview.fold(batch):
                store.project_deal(*item)
        out.append({deal: {k: v for k, v in mongo_db.deals.find_one({"_id": ids[deal]}).items()
                           if k != "_id"} for deal in history})
    return out


def _as(event, deal_id):
    return {**event, "subject": deal_id, "data": {**event["data"], "deal_id": deal_id}}


def test_a_batch_projected_together_gives_the_views_of_one_deal_at_a_time(mongo_db):
    """New deals, a known one, one whose view is newer than the batch (an older copy), and
    one that only the batch's later event reaches before its creation."""
    e = {name: parsed(body) for name, body in {
        "created": deal_created("d", name="北京星辰科技有限公司"),
        "needs": stage_changed("d", "needs", 2), "proposal": stage_changed("d", "proposal", 3),
    }.items()}
    history = {
        "new": ([], [e["created"], e["needs"]]),
        "also_new": ([], [e["created"]]),
        "known": ([e["created"]], [e["needs"], e["proposal"]]),
        "newer_view": ([e["created"], e["proposal"]], [e["needs"]]),
        "update_first": ([], [e["proposal"]]),
    }
    one_by_one, together = one_by_one_and_together(mongo_db, history)
    assert together == one_by_one
    assert together["known"]["stage"] == "proposal" and together["known"]["sequence"] == 3
    assert together["newer_view"]["sequence"] == 3
    assert together["new"]["name"] == "北京星辰科技有限公司"


def test_a_bulk_stopped_by_an_older_event_leaves_no_view_behind(mongo_db, monkeypatch):
    """The second deal's event is older than its view: its upsert fails on the duplicate
    `_id`, FerretDB stops the bulk there, and the deals after it are projected one by one."""
    store = QuotesStore(mongo_db)
    ids = [new_deal_id() for _ in range(5)]
    store.project_deal(*dealview.fold([_as(parsed(stage_changed("d", "proposal", 3)),
                                           ids[1])])[0])
    alone = []
    original = QuotesStore.project_deal

    def counted(self, deal_id, *args):
        alone.append(deal_id)
        return original(self, deal_id, *args)

    monkeypatch.setattr(QuotesStore, "project_deal", counted)
    store.project_deals(dealview.fold(
        [_as(parsed(deal_created("d", name=f"deal {n}")), deal_id)
         for n, deal_id in enumerate(ids)]))

    views = {d["_id"]: d for d in mongo_db.deals.find({"_id": {"$in": ids}})}
    assert set(views) == set(ids)
    assert views[ids[1]]["stage"] == "proposal" and views[ids[1]]["name"] == "deal 1"
    for n, deal_id in enumerate(ids):
        if n != 1:
            assert (views[deal_id]["stage"], views[deal_id]["sequence"]) == ("discovery", 1)
            assert views[deal_id]["name"] == f"deal {n}"
    assert ids[1] not in alone  # its newer view took nothing, its gaps were filled
