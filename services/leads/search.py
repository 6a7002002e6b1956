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
from kit.prefixsearch import (  # noqa: F401 - the walk and the merge, shared with deals
    after_prefix,
    match_key,
    merge,
    position,
    query,
    scoped,
)
from kit.textkeys import company_prefix, normalise_name

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
        return [("company_key", company_prefix(q))]
    return [("name_key", normalise_name(q)), ("company_key", company_prefix(q))]
