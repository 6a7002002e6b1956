"""An import's events leave through the relay without the relay reading the imported leads
back: it publishes each stored lead's outbox as the import inserted it (on FerretDB every
read decodes the whole document), also when a row in the middle of the chunk was refused
as a duplicate, and the clear still empties exactly what was published."""
import pytest

from tests.support.amqp import Subscriber
from tests.support.roundtrips import COMMANDS
from tests.support.wait import wait_for

QUIET = {"OUTBOX": {"sweep_interval_seconds": 3600}, "SLA": {"response_minutes": 0}}
HEADER = "name,email,country,source\n"


@pytest.fixture
def leads(container_factory, make_config, api, rabbit_config):
    from leads.service import LeadsService

    config = make_config("leads", **QUIET)
    container_factory(LeadsService, config).start()
    return api(config)


def post_csv(client, rows, key):
    return client.post("/api/v1/leads/import", data=(HEADER + "".join(rows)).encode(),
                       headers={"Content-Type": "text/csv", "Idempotency-Key": key})


def all_settled(mongo_db):
    return mongo_db.leads.count_documents({"outbox_since": {"$exists": True}}) == 0 and \
        mongo_db.leads.count_documents({"outbox": {"$ne": []}}) == 0


def test_a_chunk_with_a_duplicate_in_the_middle_is_relayed_without_reading_it_back(
        leads, mongo_db, rabbit_config):
    first = post_csv(leads, ["Existing,existing@example.com,DE,event\n"], "warm")
    assert first.status_code == 200 and first.json()["created"] == 1
    existing = mongo_db.leads.find_one({"email": "existing@example.com"})["_id"]
    assert wait_for(lambda: all_settled(mongo_db))
    events = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.created")

    COMMANDS.watch(mongo_db.name)
    resp = post_csv(leads, ["Ada,ada@example.com,DE,event\n",             # line 2
                            "Again,EXISTING@example.com,DE,event\n",      # 3: a duplicate
                            "Bo,bo@example.com,US,ads\n"], "chunk")       # 4
    assert resp.status_code == 200, resp.text
    assert (resp.json()["created"], resp.json()["duplicates"]) == (2, 1)
    assert resp.json()["errors"] == [{"line": 3, "reason": "duplicate",
                                      "existing_id": existing}]
    assert wait_for(lambda: all_settled(mongo_db))
    sent = COMMANDS.take()

    published = events.drain(expect=2, timeout=10) + events.drain(timeout=1)
    events.close()
    assert sorted(e["data"]["email"] for e in published) == ["ada@example.com",
                                                           "bo@example.com"]
    assert mongo_db.leads.count_documents({}) == 3
    # the insert, then the relay's one bulk clear; no lead is read by `_id` again
    leads_commands = [name for name, coll, _ in sent if coll == "leads"]
    assert leads_commands.count("insert") == 1, sent
    assert leads_commands.count("update") == 1, sent
    relay_reads = [(name, coll) for name, coll, _ in sent
                   if coll == "leads" and name == "find"]
    # the duplicate's explanation only: whether this key stored that row before (by its
    # `_id`), and which stored lead has its e-mail
    assert len(relay_reads) == 2, sent
