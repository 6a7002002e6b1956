"""The leads service's data migrations (kit.migrations runs them once per database).

Their `fix` functions are pure: a stored document in, the fields to set out.
"""
import datetime as dt

from kit.migrations import Migration
from leads import keys

KEY_FIELDS = ("name_key", "company_key")


def search_keys(doc):
    """The search keys (leads.keys) a lead must carry: leads stored before search existed
    have none, and a change of the key rules changes them. None when they are right."""
    want = keys.keys({"name": doc.get("name"), "company": doc.get("company")})
    wrong = {k: v for k, v in want.items() if k not in doc or doc[k] != v}
    return wrong or None


# In order. A new rule for the keys gets a new name (…_v2), so it runs again. Leads are
# walked by (created_at, _id): its index is one the local FerretDB build walks (it does
# not push `_id` ranges down).
MIGRATIONS = (
    Migration("lead_search_keys_v1", "leads", ("name", "company", *KEY_FIELDS), search_keys,
              walk="created_at", floor=dt.datetime(1, 1, 1, tzinfo=dt.UTC)),
)
