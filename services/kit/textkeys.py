"""Normalised text keys, pure: what prefix searches range over (kit.prefixsearch) and what
companies are matched by. Leads store them as `name_key` and `company_key`, deals as
`name_key` and `account_key`.

- name: NFKC, case-folded, spaces collapsed;
- company: as a name, punctuation dropped and trailing legal forms removed ("ACME, Inc."
  and "Acme Inc" and "acme" are one company).

The formats are part of the stored data: changing a rule here means recomputing the keys
of stored documents in every service that stores them (a migration each).
"""
import re
import unicodedata

# legal forms that do not tell two companies apart, removed from the end of a name
LEGAL_FORMS = frozenset((
    "inc", "incorporated", "ltd", "limited", "llc", "llp", "lp", "plc", "corp",
    "corporation", "co", "company", "gmbh", "ag", "kg", "se", "sa", "sas", "sarl", "srl",
    "spa", "bv", "nv", "ab", "as", "oy", "kk", "pty", "pte", "bhd",
))
CJK_LEGAL_FORMS = ("股份有限公司", "有限责任公司", "有限公司", "公司")
_SPACES = re.compile(r"\s+")


def fold(text):
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def normalise_name(name):
    return fold(name) or None if name else None


def company_prefix(text):
    """What a typed company searches for: its key, or the folded text where the key is
    empty (a legal form alone, "Ltd", stays searchable)."""
    return normalise_company(text) or fold(text)


def normalise_company(company):
    """The company's key: folded, punctuation as spaces, trailing legal forms dropped (but
    never down to nothing: "Company Ltd" stays "company")."""
    if not company:
        return None
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in fold(company))
    words = text.split()
    for suffix in CJK_LEGAL_FORMS:
        if words and words[-1].endswith(suffix) and len(words[-1]) > len(suffix):
            words[-1] = words[-1][:-len(suffix)]
            break
    while len(words) > 1 and words[-1] in LEGAL_FORMS:
        words.pop()
    return " ".join(words) or None
