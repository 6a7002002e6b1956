"""Lead search, pure: the query a search runs, and how its pages are cut.

A search finds leads by a prefix of one normalised key: name, company (leads.keys),
e-mail or phone. Each key is a plain string field with an index on (key, _id), so a search
is one index range walked in order and cut at the page's limit: MongoDB and the local
FerretDB build both answer it without reading the collection, at any size. E-mail is
lower-cased (the stored `email` is so already); a phone is E.164 (the stored `phone`):
what is typed is read as a number of the default region where it has no `+`, so
`138 0013 8000` finds `+8613800138000`, and a partial number finds the phones that start
with it. `any` text searches names and companies at once: each lead appears once, at the
lesser of its matching keys.
"""
import re

from kit.errors import Invalid
from leads.keys import fold, normalise_company, normalise_name

KEYS = {"name": "name_key", "company": "company_key", "email": "email", "phone": "phone"}
BY = ("any", *KEYS)
_PHONEISH = re.compile(r"^[+\d\s\-().]+$")


def kind_of(q):
    """What a query looks like when the caller did not say: e-mail, phone or text."""
    if "@" in q:
        return "email"
    if _PHONEISH.match(q) and sum(c.isdigit() for c in q) >= 3:
        return "phone"
    return "any"


def phone_prefix(q, region):
    """The E.164 prefix a typed phone number (whole or its start) stands for."""
    import phonenumbers  # here, not at the top: a tenth of the service's start-up imports

    text = q.strip()
    try:
        number = phonenumbers.parse(text, region)
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        return "+" + digits
    if text.startswith("00"):
        return "+" + digits[2:]
    code = phonenumbers.country_code_for_region(region or "")
    if not code:
        return "+" + digits
    return f"+{code}{digits.lstrip('0')}"


def prefixes(q, by, region):
    """[(field, normalised prefix)] a query searches; several for `any` text."""
    q = q.strip()
    if not q:
        raise Invalid("Give something to search for.", errors={"q": ["Must not be blank."]})
    if by == "any":
        by = kind_of(q)
    if by == "email":
        return [("email", q.lower())]
    if by == "phone":
        return [("phone", phone_prefix(q, region))]
    if by == "name":
        return [("name_key", normalise_name(q))]
    if by == "company":
        return [("company_key", normalise_company(q) or fold(q))]
    return [("name_key", normalise_name(q)), ("company_key", normalise_company(q) or fold(q))]


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


def match_key(lead, searched):
    """The (value, field) a lead sorts by in a search: the least of its keys that match
    (a lead whose name and company both match appears once, at the lesser)."""
    matches = [(lead.get(field), field) for field, prefix in searched
               if isinstance(lead.get(field), str) and lead[field].startswith(prefix)]
    return min(matches) if matches else None


def merge(streams, searched, limit, descending=False):
    """One page from the per-key result streams (each in its key's order, limit + 1 rows
    asked): each lead once, at its match key, in (value, _id) order. Returns (rows, the
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
    asking for another owner's leads finds none)."""
    out = dict(filters)
    for key, value in scope_filter.items():
        if key in out and out[key] != value:
            return None
        out[key] = value
    return out
