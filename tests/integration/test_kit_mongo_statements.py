"""Writes and reads that repeat the same SQL behave as the first one did.

The local FerretDB's SQLite driver keeps each connection's statements compiled by their
SQL text (deploy/local/ferretdb/sqlite-stmtcache.patch): the same insert, update or find
runs again without compiling. These pin what a kept statement must not change: a failed
write leaves nothing behind and the next one of the same shape works; a statement sees a
collection dropped and made again with other indexes; two cursors of one query stay
apart; values bound to one run are never seen by the next. On MongoDB they hold as well."""
import pytest
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError, OperationFailure


def test_a_write_of_the_same_shape_works_after_one_refused_by_a_unique_index(mongo_db):
    docs = mongo_db.docs
    docs.create_index("key", unique=True, name="key_unique")
    docs.insert_one({"_id": "taken", "key": "taken"})
    for i in range(5):
        docs.insert_one({"_id": i, "key": f"k{i}"})
    for i in range(5):
        with pytest.raises(DuplicateKeyError):
            docs.insert_one({"_id": 100 + i, "key": f"k{i}"})
        # FerretDB v1 answers an update refused by a unique index with InternalError (1)
        with pytest.raises(OperationFailure):
            docs.update_one({"_id": i}, {"$set": {"key": "taken"}})
        assert docs.find_one({"_id": i}) == {"_id": i, "key": f"k{i}"}
        docs.insert_one({"_id": 200 + i, "key": f"new{i}"})
        docs.update_one({"_id": i}, {"$set": {"key": f"moved{i}"}})

    assert sorted((str(d["_id"]), d["key"]) for d in docs.find()) == sorted(
        [(str(i), f"moved{i}") for i in range(5)] + [(str(200 + i), f"new{i}") for i in range(5)]
        + [("taken", "taken")])


def test_the_same_writes_see_a_collection_dropped_and_made_again(mongo_db):
    for round_ in range(3):
        docs = mongo_db.docs
        docs.create_index([(f"f{round_}", ASCENDING)], unique=True, name=f"f{round_}_unique")
        docs.insert_one({"_id": 1, f"f{round_}": "x", "round": round_})
        docs.update_one({"_id": 1}, {"$set": {"n": round_}})
        with pytest.raises(DuplicateKeyError):
            docs.insert_one({"_id": 2, f"f{round_}": "x"})

        assert list(docs.find()) == [{"_id": 1, f"f{round_}": "x", "round": round_, "n": round_}]
        mongo_db.drop_collection("docs")


def test_two_cursors_of_one_query_stay_apart_and_each_reads_to_its_end(mongo_db):
    docs = mongo_db.docs
    docs.insert_many([{"_id": i, "kind": "a"} for i in range(250)])
    first = docs.find({"kind": "a"}, batch_size=10).sort("_id", ASCENDING)
    head = [next(first)["_id"] for _ in range(15)]
    second = [d["_id"] for d in docs.find({"kind": "a"}, batch_size=10).sort("_id", ASCENDING)]

    assert head + [d["_id"] for d in first] == list(range(250))
    assert second == list(range(250))


def test_values_bound_to_one_run_do_not_reach_the_next(mongo_db):
    docs = mongo_db.docs
    texts = ["a" * 3000, "b", "c" * 50, ""]
    for i, text in enumerate(texts):
        docs.insert_one({"_id": i, "text": text})
        docs.update_one({"_id": i}, {"$set": {"copy": text}})

    assert [(d["text"], d["copy"]) for d in docs.find().sort("_id", ASCENDING)] == \
        [(t, t) for t in texts]
    assert [docs.find_one({"_id": i})["text"] for i in range(len(texts))] == texts
