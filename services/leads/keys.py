"""The keys of a lead's name and company (kit.textkeys), stored on each lead as
`name_key` and `company_key`: what search ranges over (leads.search) and what accounts are
matched by (the company)."""
from kit.textkeys import fold, normalise_company, normalise_name

__all__ = ("fold", "normalise_company", "normalise_name", "keys")


def keys(fields):
    """The keys `fields` (a lead, or a change's fields) determine."""
    out = {}
    if "name" in fields:
        out["name_key"] = normalise_name(fields["name"])
    if "company" in fields:
        out["company_key"] = normalise_company(fields["company"])
    return out
