"""Quote expiry: a timer on every instance, each due quote claimed by one versioned write,
so two instances expire each sent quote exactly once."""
import datetime as dt

from tests.integration.quotes.quotes_support import (
    Quotes,
    known_deal,
    new_deal_id,
    quotes_config,
    start_quotes,
    wait_for,
)
from tests.support.amqp import Subscriber


def test_two_instances_expire_each_due_quote_once(container_factory, make_config, api,
                                                  rabbit_config, mongo_db):
    fast = {"QUOTES": {"expiry_check_interval_seconds": 0.1}}
    first, second = quotes_config(make_config, **fast), quotes_config(make_config, **fast)
    sub = Subscriber(rabbit_config["AMQP_URI"], "quotes", "quote.expired")
    start_quotes(container_factory, first)
    start_quotes(container_factory, second)
    quotes = Quotes(api(first), first)
    quotes.product()
    deal_id = new_deal_id()
    known_deal(mongo_db, rabbit_config["AMQP_URI"], deal_id)
    sent, drafts = [], []
    for _ in range(6):
        quote = quotes.must_create(deal_id)
        quotes.must(quote["id"], "submit")
        sent.append(quotes.must(quote["id"], "send")["quote"]["id"])
    drafts.append(quotes.must_create(deal_id)["id"])
    # their validity ends now (as time would have it), the draft's too
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    mongo_db.quotes.update_many({}, {"$set": {"valid_until": past}})

    assert wait_for(lambda: all(quotes.get(q)["status"] == "expired" for q in sent))
    expired = sub.drain(expect=6, timeout=10) + sub.drain(timeout=1)
    assert sorted(e["subject"] for e in expired) == sorted(sent)
    assert quotes.get(drafts[0])["status"] == "draft"  # only sent quotes expire
    assert quotes.get(sent[0])["allowed_actions"] == ["revise"]
    sub.close()
