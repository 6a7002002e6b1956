"""The quotes service's deal view applies deal events in batches (kit.batches): a batch out
of order and with duplicates gives the view of the newest event, with the name only the
creation carries, as applying them one by one would."""
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
