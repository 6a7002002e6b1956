"""The leads service's data migrations (kit.migrations runs them once per database).

Their `fix` functions are pure: a stored document in, the fields to set out.
"""
import datetime as dt

from kit.migrations import Migration
from leads import keys, scoring
from leads.domain import COUNTS
from leads.records_store import ACCOUNTS, CONTACTS, record_logs
from leads.store import activity_log

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


def activity_buckets(log):
    """The migration that moves the activities of leads stored before the buckets into
    them (kit.buckets; `log` is the leads' activity log): the buckets first, then the lead
    keeps its recent entries, their count and how many of each type it has. The lead's
    write requires it still has no count, so a write that numbered its entries first
    (kit.buckets.BucketLog.append) wins; both writes are idempotent."""
    def fix(doc):
        if log.count_field in doc:
            return None
        _, update = log.migration(doc)
        fields = dict(update["$set"])
        if COUNTS not in doc:
            fields[COUNTS] = scoring.counts_of(doc.get(log.field) or ())
        return fields

    def copies(doc):
        return [] if log.count_field in doc else [(log.collection, log.migration(doc)[0])]

    return Migration("lead_activity_buckets_v1", "leads", (log.count_field,), fix,
                     walk="created_at", floor=dt.datetime(1, 1, 1, tzinfo=dt.UTC),
                     needs=(log.field, COUNTS), copies=copies)


def record_activity_buckets(log, collection):
    """The migration that moves the timeline of accounts or contacts (`collection`) stored
    before the buckets into them (kit.buckets; `log`, the records' log of that collection):
    the buckets and the entries' keys (an account's conversions) first, then the record
    keeps its recent entries and their count, written only while it has no count yet, so
    a write that numbered its entries first wins; both writes are idempotent."""
    def fix(doc):
        if log.count_field in doc:
            return None
        return dict(log.migration(doc)[1]["$set"])

    def copies(doc):
        return [] if log.count_field in doc else log.migration_writes(doc)

    return Migration(f"{collection[:-1]}_activity_buckets_v1", collection,
                     (log.count_field,), fix, walk="created_at",
                     floor=dt.datetime(1, 1, 1, tzinfo=dt.UTC), needs=(log.field,),
                     copies=copies)


def migrations(config):
    """Every migration of the leads, in order (the activity logs' buckets as configured)."""
    logs = record_logs(config)
    return (*MIGRATIONS, activity_buckets(activity_log(config)),
            *(record_activity_buckets(logs[coll], coll) for coll in (ACCOUNTS, CONTACTS)))
