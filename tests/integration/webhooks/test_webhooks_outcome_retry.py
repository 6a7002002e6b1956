"""A delivery the receiver took while the database went away: its outcome is written once
the database is back, within the claim's lease, so the receiver does not get it again."""
import threading
import uuid

from tests.integration.webhooks.webhooks_support import (
    assigned,
    publish,
    start_webhooks,
    subscribe,
    wait_received,
    webhooks_config,
)
from tests.support.wait import wait_for

# longer than the driver's own wait for a server (MONGO.timeout_ms, 3 s), so the write
# fails rather than waits; well within the lease, which the test keeps short so that,
# without the retried write, the claim lapses and the message goes out again
OUTAGE, LEASE = 4.5, 12


def test_an_outcome_written_after_an_outage_delivers_once(
        container_factory, make_config, api, receiver, mongo_db, database_proxy):
    config = webhooks_config(make_config, lease_seconds=LEASE)
    config["MONGO_URI"] = database_proxy.uri
    container = start_webhooks(container_factory, config)
    sender = next(d for d in container.extensions if d.__class__.__name__ == "Sender")
    post, outages = sender.post, []

    def post_then_lose_the_database(sub, doc, now):
        answer = post(sub, doc, now)
        if not outages:
            outages.append(doc["_id"])
            database_proxy.down()
            threading.Timer(OUTAGE, database_proxy.up).start()
        return answer

    sender.post = post_then_lose_the_database
    subscribe(api(config), receiver, "lead.assigned")
    event = assigned(str(uuid.uuid4()), 1)
    publish(config, [event])
    assert wait_received(receiver, [event["id"]])
    assert wait_for(lambda: (mongo_db.deliveries.find_one({"event_id": event["id"]}) or {})
                    .get("status") == "delivered", timeout=30)
    assert outages, "the database was never cut"
    delivery = mongo_db.deliveries.find_one({"event_id": event["id"]})
    assert delivery["attempts"] == 1
    assert [wid for wid, _ in receiver.wire].count(delivery["_id"]) == 1  # every request
