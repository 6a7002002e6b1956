"""Prefix search over normalised keys, pure: each key a plain string field with an index
on (key, _id), so one search is one index range walked in order and cut at the page's
limit. MongoDB and the local FerretDB build both answer it without reading the
collection, at any size. Searching several keys at once (a lead's name and company, a
deal's name and account) merges their ranges: each document once, at the lesser of its
matching keys. Used by leads.search and deals' search.
"""
from kit.errors import Invalid


def after_prefix(prefix):
    """The least string greater than every string starting with `prefix` (code point order
    is UTF-8 byte order, the order both servers compare strings in)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def query(field, prefix, position=None, descending=False):
    """The filter of one key's range, after `position` = (value, _id) in the walk order."""
    lo, hi = prefix, after_prefix(prefix)
    if position is None:
        return {field: {"$gte": lo, "$lt": hi}}
    value, last_id = position
    if descending:
        return {"$or": [{field: {"$gte": lo, "$lt": value}},
                        {field: value, "_id": {"$lt": last_id}}]}
    return {"$or": [{field: {"$gt": value, "$lt": hi}}, {field: value, "_id": {"$gt": last_id}}]}


def match_key(document, searched):
    """The (value, field) a document sorts by in a search: the least of its keys that match
    (a document whose name and company both match appears once, at the lesser)."""
    matches = [(document.get(field), field) for field, prefix in searched
               if isinstance(document.get(field), str) and document[field].startswith(prefix)]
    return min(matches) if matches else None


def merge(streams, searched, limit, descending=False):
    """One page from the per-key result streams (each in its key's order, limit + 1 rows
    asked): each document once, at its match key, in (value, _id) order. Returns (rows, the
    position after them or None at the end). A stream that filled its request may hold
    more beyond its last row, so the page stops there."""
    seen, rows, bounds = set(), [], []
    for field, docs in streams:
        if len(docs) > limit:
            bounds.append((docs[-1][field], docs[-1]["_id"]))
        for doc in docs:
            key = match_key(doc, searched)
            if key is None or key[1] != field or doc["_id"] in seen:
                continue
            seen.add(doc["_id"])
            rows.append(((key[0], doc["_id"]), doc))
    rows.sort(key=lambda r: r[0], reverse=descending)
    if bounds:
        cut = max(bounds) if descending else min(bounds)
        rows = [r for r in rows if (r[0] >= cut if descending else r[0] <= cut)]
    page = rows[:limit]
    if len(rows) > limit:
        return [doc for _, doc in page], page[-1][0]
    if bounds:
        return [doc for _, doc in page], cut
    return [doc for _, doc in page], None


def position(values):
    """(value, _id) from a decoded cursor; Invalid naming the parameter otherwise."""
    if not (isinstance(values, list) and len(values) == 2
            and all(isinstance(v, str) for v in values)):
        raise Invalid("Not a valid cursor.", errors={"cursor": ["Not a valid cursor."]})
    return tuple(values)


def scoped(filters, scope_filter):
    """Filters with the caller's reach applied; None when they cannot both hold (a rep
    asking for another owner's documents finds none)."""
    out = dict(filters)
    for key, value in scope_filter.items():
        if key in out and out[key] != value:
            return None
        out[key] = value
    return out
