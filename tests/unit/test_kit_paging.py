"""Keyset cursors: one encoding for every list, and a 400 naming `cursor` for any other."""
import datetime as dt

import pytest
from marshmallow import ValidationError

from kit.http import encode_cursor
from kit.paging import after, keyset_filter, next_cursor

T = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def test_a_cursor_names_the_last_row_and_reads_back_aware():
    cursor = next_cursor([{"_id": "a", "created_at": T - dt.timedelta(hours=1)},
                          {"_id": "b", "created_at": T}], more=True)
    assert after(cursor) == (T, "b")
    assert next_cursor([{"_id": "b", "created_at": T}], more=False) is None


@pytest.mark.parametrize("cursor", [
    "%%%not-base64",
    encode_cursor(["2026-11-26T12:00:00+00:00"]),
    encode_cursor(["2026-11-26T12:00:00", "b"]),       # no offset
    encode_cursor(["yesterday", "b"]),
    encode_cursor(["2026-11-26T12:00:00+00:00", 7]),   # not an id
    encode_cursor({"at": "2026-11-26T12:00:00+00:00"}),
])
def test_a_tampered_cursor_is_refused_naming_the_parameter(cursor):
    with pytest.raises(ValidationError) as exc:
        after(cursor)
    assert list(exc.value.messages) == ["cursor"]


@pytest.mark.parametrize("descending, op", [(False, "$gt"), (True, "$lt")])
def test_the_next_page_starts_strictly_after_the_cursor(descending, op):
    assert keyset_filter((T, "b"), descending=descending) == {"$or": [
        {"created_at": {op: T}}, {"created_at": T, "_id": {op: "b"}}]}


@pytest.mark.parametrize("values", [["2026-11-26T12:00:00", "b"], [1, 2, 3], ["x", 1]])
def test_a_cursor_of_the_wrong_shape_is_a_query_parameter_error(values):
    import json

    from kit.http import problem_from_exception

    with pytest.raises(ValidationError) as raised:
        after(encode_cursor(values))
    body = json.loads(problem_from_exception(raised.value).get_data())
    assert body["status"] == 400 and "query parameter" in body["detail"]
    assert body["errors"] == {"cursor": ["Not a valid cursor."]}
