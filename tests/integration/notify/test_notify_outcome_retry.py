"""A message that went out while the database went away: its outcome is written once the
database is back, within the claim's lease, so the message is not sent a second time when
the lease runs out (what a 5-second database outage in the soak did to a few mails)."""
import threading

from tests.integration.notify.notify_support import (
    lead_assigned,
    notifier_of,
    notify_config,
    publish,
    start_notify,
    wait_status,
)
from tests.support.wait import wait_for

# longer than the driver's own wait for a server (MONGO.timeout_ms, 3 s), so the write
# fails rather than waits; well within the lease, which the test keeps short so that,
# without the retried write, the claim lapses and the message goes out again
OUTAGE, LEASE = 4.5, 12


def test_an_outcome_written_after_an_outage_sends_the_mail_once(
        container_factory, make_config, api, rabbit_config, tmp_path, inbox, database_proxy):
    # a short lease: without the retried write, the claim lapses within the test and the
    # mail goes out again
    config = notify_config(make_config, tmp_path, inbox, NOTIFY={"lease_seconds": LEASE})
    config["MONGO_URI"] = database_proxy.uri
    container = start_notify(container_factory, config)
    notifier = notifier_of(container)
    send = notifier.send
    outages = []

    def send_then_lose_the_database(doc):
        send(doc)
        if not outages:  # the database goes away right after the first mail went out
            outages.append(doc["_id"])
            database_proxy.down()
            threading.Timer(OUTAGE, database_proxy.up).start()

    notifier.send = send_then_lose_the_database
    ev = lead_assigned("L-outage")
    publish(rabbit_config["AMQP_URI"], ev)

    note = wait_status(api(config), f"{ev['id']}|lead_assigned|person:ann|email", "sent",
                       timeout=30)
    assert outages, "the database was never cut"
    assert note["attempts"] == 1 and [e["status"] for e in note["log"]] == ["queued", "sent"]
    assert len(wait_for(lambda: inbox.to("ann@example.cn"))) == 1
