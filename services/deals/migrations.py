"""The deals' data migrations (kit.migrations), run in the background once the indexes
exist: /readyz waits for indexes, never for a migration, since reads are tolerant of the
documents a migration has not reached yet (kit.buckets reads a deal of the old shape)."""
import datetime as dt

from deals.store import DEALS, history_log, search_keys
from kit.migrations import Migration


def history_buckets(log):
    """The history of deals stored before the buckets (a plain list in the deal) moved into
    them: the buckets first, then the deal keeps its recent entries and their count. The
    deal's write requires it still has no count, so a write that numbered its entries
    first (kit.buckets.BucketLog.append) wins; both writes are idempotent. Walked by
    (created_at, _id), which the deals' lists index."""
    def fix(doc):
        if log.count_field in doc:
            return None
        return dict(log.migration(doc)[1]["$set"])

    def copies(doc):
        return [] if log.count_field in doc else [(log.collection, log.migration(doc)[0])]

    # a new name: the marker of the earlier in-store migration ("deal_history_buckets")
    # has another shape; on a database it finished, this pass finds nothing to fix
    return Migration("deal_history_buckets_v1", DEALS, (log.count_field,), fix,
                     walk="created_at", floor=dt.datetime(1, 1, 1, tzinfo=dt.UTC),
                     needs=(log.field,), copies=copies)


def search_key_fields():
    """The search keys of deals stored before deals had a search: set where missing or
    not what the name and account give now (a write guarded on the name and account read,
    so a concurrent edit, which writes its own keys, wins)."""
    def fix(doc):
        wanted = search_keys({"name": doc.get("name"), "account": doc.get("account")})
        return None if all(doc.get(k, "missing") == v for k, v in wanted.items()) else wanted

    return Migration("deal_search_keys_v1", DEALS, ("name", "account"), fix,
                     walk="created_at", floor=dt.datetime(1, 1, 1, tzinfo=dt.UTC),
                     needs=("name_key", "account_key"))


def migrations(config):
    """Every migration of the deals, in order (the history's buckets as configured)."""
    return (history_buckets(history_log(config)), search_key_fields())
