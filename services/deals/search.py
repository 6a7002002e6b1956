"""Deal search, pure: what a query searches. A deal is found by a prefix of its name or of
its account, each normalised as leads normalise names and companies (kit.textkeys) and
stored beside them (`name_key`, `account_key`); `any` searches both at once, each deal
once (kit.prefixsearch walks and merges the index ranges)."""
from kit.errors import Invalid
from kit.textkeys import company_prefix, normalise_name

BY = ("any", "name", "account")


def prefixes(q, by):
    """[(key, normalised prefix)] a query searches."""
    q = q.strip()
    if not q:
        raise Invalid("Give something to search for.", errors={"q": ["Must not be blank."]})
    name = ("name_key", normalise_name(q))
    account = ("account_key", company_prefix(q))
    return {"name": [name], "account": [account], "any": [name, account]}[by]
