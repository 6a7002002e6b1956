"""The database keeps answering under the load an outbox relay and an import put on it: a
bulk update of hundreds of statements, many cursors left open, writes beside them.

FerretDB v1.24 on SQLite hung here (deploy/local/ferretdb/liveness.patch): each statement
of a bulk update kept a pooled connection until the command ended, open cursors keep
theirs, and the pool held 100, so the write waited forever for a connection and every
query of that database behind it. Each client here has a socket timeout, so a hang is a
failure after a deadline (liveness), never a wait without end; nothing measures speed."""
import eventlet
import pytest
from pymongo import MongoClient, UpdateOne

from tests.conftest import MONGO_URI

DEADLINE_MS = 30_000  # far beyond what any of this takes on a server that answers
DOCS = 500


@pytest.fixture
def client():
    c = MongoClient(MONGO_URI, socketTimeoutMS=DEADLINE_MS, serverSelectionTimeoutMS=5000,
                    maxPoolSize=300)
    yield c
    c.close()


def answers_ping(db_name):
    """A fresh client: the server answers a ping and a read of the loaded database."""
    with MongoClient(MONGO_URI, socketTimeoutMS=5000, serverSelectionTimeoutMS=5000) as c:
        db = c[db_name]
        return db.command("ping")["ok"] == 1 and db.docs.find_one({"_id": 0}) is not None


def relay_batch(coll, ids=range(DOCS)):
    """What the batched outbox relay sends: one $in read, one bulk update of each document."""
    ids = [d["_id"] for d in coll.find({"_id": {"$in": list(ids)}}, {"_id": 1})]
    result = coll.bulk_write([UpdateOne({"_id": i, "outbox.0": {"$exists": True}},
                                        {"$set": {"outbox": []}}) for i in ids], ordered=False)
    return result.modified_count


def test_a_bulk_update_of_500_statements_completes_and_the_server_answers(client, mongo_db_name):
    coll = client[mongo_db_name].docs
    coll.insert_many([{"_id": i, "outbox": [{"n": i}]} for i in range(DOCS)])

    assert relay_batch(coll) == DOCS
    assert answers_ping(mongo_db_name)


def test_bulk_updates_beside_many_open_cursors_complete_and_the_server_answers(
        client, mongo_db_name):
    coll = client[mongo_db_name].docs
    coll.insert_many([{"_id": i, "outbox": [{"n": i}], "g": i % 10} for i in range(DOCS)])

    # 150 cursors, each with a batch read and more to come, none closed yet
    cursors = []
    for k in range(150):
        cursor = coll.find({"g": k % 10}, batch_size=2)
        next(cursor)
        cursors.append(cursor)

    # writers and readers side by side, as a relay, an import and list pages do; the
    # batches stay under 100 statements: here the open cursors alone must not starve them
    def writer(round_):
        coll.update_many({"g": round_ % 10}, {"$push": {"outbox": {"r": round_}}})
        relay_batch(coll, range(round_ % 10, DOCS, 10))

    def reader(k):
        return len(list(coll.find({"g": k % 10}, batch_size=5)))

    pool = eventlet.GreenPool(40)
    writes = [pool.spawn(writer, r) for r in range(10)]
    reads = [pool.spawn(reader, k) for k in range(60)]
    for w in writes:
        w.wait()  # raises if a write failed or passed the deadline
    assert all(r.wait() == DOCS // 10 for r in reads)
    assert coll.count_documents({"outbox.0": {"$exists": True}}) == 0

    # the cursors opened before all that still read to their end
    assert sum(1 + len(list(c)) for c in cursors) == 150 * DOCS // 10
    assert answers_ping(mongo_db_name)
