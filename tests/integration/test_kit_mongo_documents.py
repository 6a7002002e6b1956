"""Documents come back from the server as they were written, through every read and write
path a service uses: find, find-and-modify, an update that rewrites the stored document,
a cursor's later batches. (FerretDB v1 stores no array directly inside an array, so none
is written here; no service writes one.)

The local FerretDB decodes stored documents with Dealflow's one-pass decoder
(deploy/local/ferretdb/sjson-decode.patch); these pin what it must give back for each BSON
type the server stores, nested, in Chinese and with every character JSON escapes. On
MongoDB they hold as well."""
import datetime as dt
import re

import pytest
from bson import Binary, Int64, ObjectId, Regex, Timestamp
from pymongo import ReturnDocument

UTC = dt.UTC
TEXTS = ["", "plain", "上海云杉科技有限公司", "ＳＵＭＭＩＴ Foods GmbH", "王芳 <fang.wang@qq.com>",
         'quote " backslash \\ slash /', "tab\tnewline\nreturn\r", "\x01\x1f control",
         "\u2028\u2029 separators", "emoji 😀 and 𠀀", "null", "true", "{}", "[1,2]", "$s",
         "a\"b\\u0041", "é (NFC) é (NFD)"]
SCALARS = {
    "text": "上海", "int32_max": 2**31 - 1, "int32_min": -2**31, "int64_max": Int64(2**63 - 1),
    "int64_min": Int64(-2**63), "zero": 0, "double": 1.5, "negative_zero": -0.0,
    "huge": 1e300, "tiny": 5e-324, "third": 1 / 3, "yes": True, "no": False, "nothing": None,
    "before_1970": dt.datetime(1969, 7, 20, 20, 17, 40, 123000, tzinfo=UTC),
    "now_ms": dt.datetime(2026, 11, 28, 8, 0, 0, 999000, tzinfo=UTC),
    "oid": ObjectId("65f0c0ffee0000000000abcd"), "bytes": b"\x00\xff binary",
    "uuid_bytes": Binary(bytes(range(16)), 4), "pattern": Regex("^上海.*\\d+$", "i"),
    "ts": Timestamp(1_700_000_000, 7),
}


def _document(key):
    return {
        "_id": key, **SCALARS, "texts": TEXTS,
        "outbox": [{"id": f"e{i}", "type": "lead.created", "data": {
            "name": TEXTS[i % len(TEXTS)], "amount": "12345.67", "n": i,
            "tags": ["a", {"deep": [1, {"in": [2, {"deeper": "底"}]}]}]}} for i in range(5)],
        "empty_doc": {}, "empty_list": [], "list_of_empty": [{}, {"empty": []}, None],
        "mixed": [1, "two", 3.0, None, True, {"k": "v"}, {"list": ["x"]}],
        "nest": _nested(20),
        "keys": {"名": 1, "a b": 2, "key\"quoted": 3, "back\\slash": 4},
    }


def _nested(depth):
    doc = {"leaf": "叶"}
    for level in range(depth):
        doc = {"level": level, "child": doc, "siblings": [level, {"at": level}]}
    return doc


def _same(got, want):
    """Equal as the driver compares: -0.0 equals 0.0 (FerretDB v1 drops a zero's sign,
    before and after the decoder patch; MongoDB keeps it)."""
    assert got == want


@pytest.fixture()
def docs(mongo_db):
    return mongo_db.get_collection(
        "docs", codec_options=mongo_db.codec_options.with_options(tz_aware=True,
                                                                  tzinfo=UTC))


def test_a_document_of_every_type_reads_back_as_written(docs):
    want = _document("all")
    docs.insert_one(want)
    _same(docs.find_one({"_id": "all"}), want)
    _same(next(docs.find({"text": "上海"})), want)


def test_an_update_rewrites_the_document_and_leaves_the_other_fields_as_they_were(docs):
    want = _document("upd")
    docs.insert_one(want)
    docs.update_one({"_id": "upd"}, {"$set": {"outbox": [], "text": "北京"},
                                     "$unset": {"nothing": ""}})
    want.update(outbox=[], text="北京")
    del want["nothing"]
    _same(docs.find_one({"_id": "upd"}), want)


def test_find_and_modify_returns_the_document_before_and_after(docs):
    want = _document("fam")
    docs.insert_one(want)
    before = docs.find_one_and_update({"_id": "fam"}, {"$inc": {"zero": 1}})
    _same(before, want)
    after = docs.find_one_and_update({"_id": "fam"}, {"$push": {"texts": "新"}},
                                     return_document=ReturnDocument.AFTER)
    want.update(zero=1, texts=[*TEXTS, "新"])
    _same(after, want)


@pytest.mark.parametrize("text", TEXTS)
def test_each_escaped_or_unicode_text_survives_as_value_and_in_a_query(docs, text):
    docs.insert_one({"_id": 1, "t": text, "in": {"list": [text]}})
    assert docs.find_one({"t": text}) == {"_id": 1, "t": text, "in": {"list": [text]}}
    docs.update_one({"_id": 1}, {"$set": {"n": 1}})
    assert docs.find_one({"_id": 1})["in"]["list"] == [text]


def test_a_cursor_gives_every_document_across_its_batches(docs):
    docs.insert_many([{**_document(f"d{i:03}"), "i": i} for i in range(250)])
    seen = list(docs.find({}, batch_size=40).sort("_id", 1))
    assert [d["i"] for d in seen] == list(range(250))
    _same({k: v for k, v in seen[123].items() if k != "i"}, _document("d123"))


def test_a_regex_keeps_its_flags(docs):
    docs.insert_one({"_id": 1, "r": re.compile("^王", re.IGNORECASE | re.MULTILINE)})
    got = docs.find_one({"_id": 1})["r"]
    assert (got.pattern, got.flags & (re.I | re.M)) == ("^王", re.I | re.M)
