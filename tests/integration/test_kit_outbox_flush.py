"""A stopping instance publishes what its outbox still holds (kit.mongo Store.stop, within
SHUTDOWN.grace_seconds): here the events of a write made while the broker was down, which
no sweep would publish while this instance is the only one."""
from tests.support.amqp import Subscriber
from tests.support.things import ThingsService


def test_stop_flushes_the_outbox_a_broker_outage_left(container_factory, make_config, api,
                                                     rabbit_config, broker_proxy, mongo_db):
    config = make_config("leads", OUTBOX={"sweep_interval_seconds": 300, "grace_seconds": 300},
                         SHUTDOWN={"grace_seconds": 10})
    config["AMQP_URI"] = broker_proxy.uri
    sub = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.created")
    container = container_factory(ThingsService, config)
    container.start()

    broker_proxy.down()
    resp = api(config).post("/api/v1/things", json={"name": "while-down"})
    assert resp.status_code == 201, resp.text
    thing_id = resp.json()["id"]
    assert len(mongo_db.things.find_one({"_id": thing_id})["outbox"]) == 1

    broker_proxy.up()
    container.stop()

    [event] = sub.drain(expect=1, timeout=5)
    assert event["subject"] == thing_id
    assert mongo_db.things.find_one({"_id": thing_id})["outbox"] == []
    sub.close()
