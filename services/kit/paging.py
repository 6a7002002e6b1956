"""Keyset paging: a page ends with a cursor naming its last row's (time, id), and the next
page starts strictly after it, in the list's order; both keys are indexed together."""
import datetime as dt

from kit.fields import to_utc
from kit.http import QueryInvalid, decode_cursor, encode_cursor


def next_cursor(rows, more, time_key="created_at"):
    """The cursor after the last of `rows`, or None when `more` says this was the end."""
    if not more or not rows:
        return None
    return encode_cursor([to_utc(rows[-1][time_key]).isoformat(), str(rows[-1]["_id"])])


def after(cursor):
    """(aware UTC time, id) from a cursor; a 400 naming the query parameter otherwise."""
    values = decode_cursor(cursor)
    try:
        at, last_id = values
        at = dt.datetime.fromisoformat(at)
    except (TypeError, ValueError):
        raise QueryInvalid({"cursor": ["Not a valid cursor."]}) from None
    if at.tzinfo is None or not isinstance(last_id, str):
        raise QueryInvalid({"cursor": ["Not a valid cursor."]})
    return to_utc(at), last_id


def keyset_filter(position, time_key="created_at", descending=False):
    """The query condition for rows after `position` = (time, id) in (time, _id) order."""
    at, last_id = position
    beyond = "$lt" if descending else "$gt"
    return {"$or": [{time_key: {beyond: at}}, {time_key: at, "_id": {beyond: last_id}}]}
