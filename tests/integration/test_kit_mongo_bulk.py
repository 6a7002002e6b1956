"""Bulk writes keep MongoDB's semantics: an ordered insert stops at its first error with
exactly the documents before it stored, an unordered one stores all the others; every
statement of a bulk update or delete sees what the statements before it wrote; counts
(n, nModified, upserted) are exact.

The local FerretDB runs each bulk command in one SQLite transaction, committed every
1,000 documents or statements (deploy/local/ferretdb/bulk.patch), so the sizes here cross
FerretDB's insert batches of 100 and the 1,000-statement commits. Stock FerretDB v1.24
went on after a duplicate _id with the next batch of 100 of an ordered insert."""
import pytest
from pymongo import ASCENDING, DeleteMany, DeleteOne, InsertOne, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000


def insert_with_duplicate_at(coll, size, at, ordered):
    coll.insert_one({"_id": at, "first": True})
    with pytest.raises(BulkWriteError) as failed:
        coll.insert_many([{"_id": i, "n": i} for i in range(size)], ordered=ordered)
    return failed.value.details


@pytest.mark.parametrize("size, at", [(300, 0), (300, 50), (300, 150), (300, 299),
                                      (2500, 1500)])
def test_an_ordered_insert_stops_at_a_duplicate_with_exactly_the_documents_before_it(
        mongo_db, size, at):
    details = insert_with_duplicate_at(mongo_db.docs, size, at, ordered=True)

    assert details["nInserted"] == at
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(at, DUPLICATE_KEY)]
    assert sorted(d["_id"] for d in mongo_db.docs.find({"first": {"$exists": False}})) == \
        list(range(at))
    assert mongo_db.docs.find_one({"_id": at}) == {"_id": at, "first": True}


@pytest.mark.parametrize("size, at", [(300, 0), (300, 150), (2500, 1500)])
def test_an_unordered_insert_stores_every_document_but_the_duplicate(mongo_db, size, at):
    details = insert_with_duplicate_at(mongo_db.docs, size, at, ordered=False)

    assert details["nInserted"] == size - 1
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(at, DUPLICATE_KEY)]
    assert mongo_db.docs.count_documents({}) == size
    assert mongo_db.docs.find_one({"_id": at}) == {"_id": at, "first": True}


def test_an_unordered_insert_reports_each_duplicate_by_its_index(mongo_db):
    mongo_db.docs.insert_many([{"_id": 120}, {"_id": 1200}])

    with pytest.raises(BulkWriteError) as failed:
        mongo_db.docs.insert_many([{"_id": i} for i in range(1500)] + [{"_id": 5}],
                                  ordered=False)

    assert failed.value.details["nInserted"] == 1500 - 2
    assert [e["index"] for e in failed.value.details["writeErrors"]] == [120, 1200, 1500]
    assert mongo_db.docs.count_documents({}) == 1500


def test_a_duplicate_in_a_mixed_ordered_bulk_keeps_the_writes_before_it(mongo_db):
    mongo_db.docs.insert_one({"_id": "taken"})

    with pytest.raises(BulkWriteError) as failed:
        mongo_db.docs.bulk_write([
            InsertOne({"_id": "a", "n": 0}),
            UpdateOne({"_id": "a"}, {"$inc": {"n": 1}}),
            InsertOne({"_id": "taken"}),
            UpdateOne({"_id": "a"}, {"$inc": {"n": 10}}),
        ], ordered=True)

    assert failed.value.details["nInserted"] == 1
    assert failed.value.details["nModified"] == 1
    assert [e["index"] for e in failed.value.details["writeErrors"]] == [2]
    assert mongo_db.docs.find_one({"_id": "a"}) == {"_id": "a", "n": 1}


def test_each_update_statement_sees_the_writes_of_the_statements_before_it(mongo_db):
    mongo_db.docs.insert_many([{"_id": i, "n": 0} for i in range(3)])

    result = mongo_db.docs.bulk_write([
        UpdateOne({"_id": 1}, {"$inc": {"n": 1}}),
        UpdateOne({"_id": 1}, {"$inc": {"n": 1}}),
        UpdateOne({"_id": "new"}, {"$set": {"n": 5}}, upsert=True),
        UpdateOne({"_id": "new"}, {"$inc": {"n": 1}}),
        UpdateOne({"_id": 2, "n": 0}, {"$set": {"tag": "x"}}),
        UpdateMany({"tag": "x"}, {"$inc": {"n": 100}}),
        UpdateOne({"_id": "missing"}, {"$set": {"n": 1}}),
        UpdateOne({"_id": 0}, {"$set": {"n": 0}}),  # matched, not modified
    ], ordered=True)

    assert (result.matched_count, result.modified_count) == (6, 5)
    assert result.upserted_ids == {2: "new"}
    assert {d["_id"]: d["n"] for d in mongo_db.docs.find()} == {0: 0, 1: 2, 2: 100, "new": 6}


def test_a_bulk_of_updates_by_id_across_commits_modifies_each_document_once(mongo_db):
    size = 2300  # three commits of the bulk
    mongo_db.docs.insert_many([{"_id": i, "n": 0} for i in range(size)])

    result = mongo_db.docs.bulk_write(
        [UpdateOne({"_id": i}, {"$inc": {"n": 1}}) for i in range(size)]
        + [UpdateOne({"_id": i}, {"$inc": {"n": 1}}) for i in range(0, size, 2)],
        ordered=False)

    assert (result.matched_count, result.modified_count) == (size + size // 2, size + size // 2)
    assert mongo_db.docs.count_documents({"n": 2}) == size // 2
    assert mongo_db.docs.count_documents({"n": 1}) == size // 2


def test_a_multi_update_of_an_indexed_field_modifies_each_document_once(mongo_db):
    """The statement reads by the index on the field it raises: a rewritten document must
    not come back later in its own scan."""
    mongo_db.docs.create_index([("rank", ASCENDING)])
    mongo_db.docs.insert_many([{"_id": i, "rank": i} for i in range(500)])

    result = mongo_db.docs.bulk_write([
        UpdateOne({"_id": 0}, {"$set": {"rank": 1}}),
        UpdateMany({"rank": {"$gte": 0}}, {"$inc": {"rank": 1000}}),
    ])

    assert (result.matched_count, result.modified_count) == (501, 501)
    assert sorted(d["rank"] for d in mongo_db.docs.find()) == \
        sorted([1001] + [1000 + i for i in range(1, 500)])


def test_a_bulk_of_deletes_counts_each_deleted_document(mongo_db):
    size = 2200
    mongo_db.docs.insert_many([{"_id": i, "odd": i % 2 == 1} for i in range(size)])

    result = mongo_db.docs.bulk_write(
        [DeleteOne({"_id": i}) for i in range(0, 1500)]   # crosses a commit
        + [DeleteOne({"_id": i}) for i in range(0, 10)]   # gone already
        + [DeleteMany({"odd": True})], ordered=True)

    assert result.deleted_count == 1500 + (size - 1500) // 2
    assert sorted(d["_id"] for d in mongo_db.docs.find()) == list(range(1500, size, 2))
