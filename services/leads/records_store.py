"""MongoDB queries of accounts and contacts (leads.accounts), part of the leads store.

Collections: `accounts` (an account, its recent timeline entries and outbox), `contacts`
(a person at an account, the leads that were theirs, recent timeline entries and outbox),
`account_activities` and `contact_activities` (the rest of each record's timeline, in
buckets: kit.buckets), `account_conversions` (which lead's conversion an account's
timeline notes, by `_id` "<account id>:<lead id>", written by the relay with the buckets).
Creation is an insert with a derived id and unique keys: a lost race or a retry finds the
record that won.

The timelines are written as the leads' activities are: accounts and contacts change
through kit.versioned (their outbox is the entity's own, kit.outbox), a change's entries
are numbered in its conditional write (kit.changes `log`), and the leads store's relay
copies them into their buckets before it clears the outbox (`bucket_logs`). So a big
customer's account stays the same size, and so does each write of it, however many leads
it converted.
"""
from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.errors import DuplicateKeyError

from kit import versioned
from kit.buckets import BucketLog
from kit.config import setting
from kit.errors import Conflict, NotFound
from kit.idempotency import APPLIED
from kit.mongo import as_stored
from kit.outbox import AUDIT, OUTBOX, SINCE
from kit.paging import keyset_filter
from leads import accounts, erasure
from leads import domain as lead_rules

ACCOUNTS, CONTACTS = "accounts", "contacts"
RECORD_COLLECTIONS = (ACCOUNTS, CONTACTS)
# each record's timeline but its recent entries, in buckets (kit.buckets)
ACTIVITIES = {ACCOUNTS: "account_activities", CONTACTS: "contact_activities"}
CONVERSIONS = "account_conversions"
SHOWN = {"outbox": 0, "outbox_since": 0, "activities": 0, APPLIED: 0}
# a record read to be changed next (kit.versioned `current`): with its recent entries and
# their counters, which the change's write is numbered and conditioned on
WHOLE = {OUTBOX: 0, SINCE: 0, AUDIT: 0}


def record_logs(config):
    """{collection: the timeline log (kit.buckets)} of accounts and contacts, as configured
    (ACTIVITIES.records_*). An account's conversions are keyed by their lead."""
    size = int(setting(config, "ACTIVITIES.records_bucket_size", 100))
    recent = int(setting(config, "ACTIVITIES.records_recent", 5))
    return {
        ACCOUNTS: BucketLog("activities", ACTIVITIES[ACCOUNTS], size=size, recent=recent,
                            keys=CONVERSIONS, key=accounts.conversion_key),
        CONTACTS: BucketLog("activities", ACTIVITIES[CONTACTS], size=size, recent=recent),
    }


class RecordsStore:
    """Mixed into LeadsStore (one database, one relay)."""

    def _records(self, coll):
        cache = self.__dict__.setdefault("_versioned_records", {})
        if coll not in cache:
            cache[coll] = versioned.Versioned(
                self.db[coll], what=coll[:-1], touched=self.touched,
                unique_conflict=f"Another {coll[:-1]} already has these keys.",
                log=self.record_logs[coll])
        return cache[coll]

    def ensure_record_indexes(self, db):
        """Declared in the leads store's index batch (`db`, kit.mongo.IndexBatch)."""
        db[ACCOUNTS].create_index("company_key", unique=True, name="company_unique")
        db[ACCOUNTS].create_index("domain_key", unique=True, name="domain_unique")
        # lists: newest first, within the caller's reach (kit.permissions: owner or team)
        for coll in RECORD_COLLECTIONS:
            db[coll].create_index([("created_at", DESCENDING), ("_id", DESCENDING)],
                                  name="created")
            for field in ("owner_id", "team"):
                db[coll].create_index([(field, ASCENDING), ("created_at", DESCENDING),
                                       ("_id", DESCENDING)], name=f"{field}_created")
        db[CONTACTS].create_index("email_key", unique=True, name="email_key_unique")
        db[CONTACTS].create_index("phone_key", unique=True, name="phone_key_unique")
        db[CONTACTS].create_index([("account_id", ASCENDING), ("created_at", DESCENDING),
                                   ("_id", DESCENDING)], name="account_created")
        db.field_defs.create_index([("entity", ASCENDING), ("key", ASCENDING)],
                                   name="entity_key")
        db.leads.create_index("contact_id", name="contact")
        db.leads.create_index("account_id", name="account")

    # --- reading ---------------------------------------------------------------------------

    def record(self, coll, _id, *, full=False):
        doc = self.db[coll].find_one({"_id": _id}, {"outbox": 0, "outbox_since": 0}
                                     if full else SHOWN)
        if doc is None:
            raise NotFound(f"No {coll[:-1]} {_id}.")
        return doc

    def find_record(self, coll, _id):
        return self.db[coll].find_one({"_id": _id}, SHOWN) if _id else None

    def record_activities(self, coll, doc):
        """The whole timeline of a record (read with `full`), oldest first: its recent
        entries and its buckets, read by `_id` (as an erasure left them)."""
        return erasure.as_erased(doc, self.record_logs[coll].whole(self.db, doc))

    def record_activity_page(self, coll, doc, after=None, limit=50):
        """A record's timeline oldest first above the entry number `after`, and the next
        page's cursor (None after the last entry)."""
        return self.record_logs[coll].page_after(self.db, doc, after, limit)

    def accounts_by(self, company_key, domain_key):
        """(the account holding the company key, the one holding the domain key), each
        or None: one read, none without a key."""
        wanted = {k: v for k, v in (("company_key", company_key), ("domain_key", domain_key))
                  if v}
        found = _first_of(self.db[ACCOUNTS], wanted, WHOLE)
        return found.get("company_key"), found.get("domain_key")

    def contact_by_identity(self, email, phone, own_id=None, projection=SHOWN):
        """The contact holding this e-mail (first) or phone, else the one whose `_id` is
        `own_id`: one read, none without an e-mail, phone or id."""
        wanted = {**lead_rules.real_keys(email, phone), **({"_id": own_id} if own_id else {})}
        found = _first_of(self.db[CONTACTS], wanted, projection)
        return next((found[k] for k in wanted if k in found), None)

    def page_records(self, coll, filters, limit, after=None):
        query = dict(filters)
        if after is not None:
            query.update(keyset_filter(after, descending=True))
        docs = list(self.db[coll].find(query, SHOWN).sort(
            [("created_at", DESCENDING), ("_id", DESCENDING)]).limit(limit + 1))
        return docs[:limit], len(docs) > limit

    # --- writing ---------------------------------------------------------------------------

    def insert_record(self, coll, doc, events, actor=None):
        """Insert a new account or contact with its first events; the record that holds
        one of its unique keys already, when one does (DuplicateKey -> that one)."""
        built = versioned.new_entity(self.record_logs[coll].start(dict(doc)), events,
                                     actor=actor)
        try:
            self.db[coll].insert_one(built)
        except DuplicateKeyError:
            return self._holder(coll, doc), False
        stored = as_stored(built)  # as the server keeps it: no read back
        self.touched(coll, doc["_id"], stored)
        return {k: v for k, v in stored.items() if k not in WHOLE}, True

    def _holder(self, coll, doc):
        keys = (("_id", "company_key", "domain_key") if coll == ACCOUNTS
                else ("_id", "email_key", "phone_key"))
        for key in keys:
            found = self.db[coll].find_one({key: doc[key]}, WHOLE)
            if found is not None:
                return found
        raise Conflict(f"A {coll[:-1]} with these keys was being created; retry.")

    def change_record(self, coll, _id, decide, **options):
        return self._records(coll).change(_id, decide, **options)

    def blank_record_buckets(self, coll, doc):
        """Blank the free text of a record's entries in its buckets (an erased contact)."""
        self.blank_log(self.record_logs[coll], doc)

    def blank_log(self, log, doc):
        """Blank the free text of the entries of `doc` in the buckets of `log`
        (leads.erasure): each bucket it may have (up to its count: the relay may have
        copied entries it has not recorded as flushed yet) read by `_id`, and written if
        it holds any."""
        _, count, _ = log.state(doc)
        ids = log.bucket_ids(doc["_id"], count)
        writes = []
        for bucket in (self.db[log.collection].find({"_id": {"$in": ids}}) if ids else ()):
            sets = {f"entries.{key}": blanked for key, entry in
                    (bucket.get("entries") or {}).items()
                    if (blanked := erasure.blanked(entry)) is not None}
            if sets:
                writes.append(UpdateOne({"_id": bucket["_id"]}, {"$set": sets}))
        if writes:
            self.db[log.collection].bulk_write(writes, ordered=False)

    def move_to_account(self, duplicate_id, survivor_id):
        """Contacts and leads of a merged account move to the one that survived."""
        for coll in (CONTACTS, "leads"):
            self.db[coll].update_many({"account_id": duplicate_id},
                                      {"$set": {"account_id": survivor_id}})

    # --- conversion ------------------------------------------------------------------------

    def link_conversion(self, lead, free_mail, now, actor=None):
        """The account and contact a converting lead belongs to, created when new and
        noted in their timelines. Returns (account_id, contact_id). Every step finds what
        an earlier attempt made, so a retried conversion links the same records."""
        # each record is read once, whole, and that read is the state its change starts
        # from (kit.versioned `current`); a record just inserted is not read at all
        contact = self.contact_by_identity(lead.get("email"), lead.get("phone"),
                                           accounts.contact_id_for(lead["_id"]), WHOLE)
        wanted = accounts.account_for_lead(lead, free_mail)
        resolve = lambda _id: self.db[ACCOUNTS].find_one({"_id": _id}, WHOLE)  # noqa: E731
        account = accounts.choose(
            resolve(contact["account_id"]) if contact else None,
            *self.accounts_by(wanted["company_key"], wanted["domain_key"]))
        account = accounts.surviving(account, resolve)
        if account is None:
            doc, events = accounts.new_account(wanted["id"], wanted["data"], now, actor)
            account, _ = self.insert_record(ACCOUNTS, doc, events, actor)
            account = accounts.surviving(account, resolve)
        if contact is None:
            doc, events = accounts.new_contact(accounts.contact_id_for(lead["_id"]),
                                               account["_id"], accounts.contact_from_lead(lead),
                                               now, actor)
            contact, _ = self.insert_record(CONTACTS, doc, events, actor)
        else:
            self.change_record(CONTACTS, contact["_id"], lambda c: accounts.link_contact(
                c, lead["_id"], now, actor), current=contact)
        log = self.record_logs[ACCOUNTS]
        # idempotent by the conversion's key, not by reading the account's past: its
        # recent entries, else one key by `_id` (kit.buckets `holds`), read after each
        # state the account's conditional write starts from
        self.change_record(ACCOUNTS, account["_id"], lambda a: accounts.link_lead(
            a, lead["_id"], contact["_id"], now, actor,
            linked=log.holds(self.db, a, lead["_id"])), current=account)
        return account["_id"], contact["_id"]

    # --- custom field definitions (kit.customfields) ---------------------------------------

    def insert_field(self, doc):
        try:
            self.db.field_defs.insert_one(dict(doc))
        except DuplicateKeyError:
            raise Conflict(f"A {doc['entity']} field {doc['key']!r} exists.",
                           existing_id=doc["key"]) from None
        return doc

    def field_defs(self, entity):
        """{key: definition} of an entity's custom fields (a few, defined by admins)."""
        return {d["key"]: d for d in self.db.field_defs.find({"entity": entity})
                .sort([("entity", ASCENDING), ("key", ASCENDING)])}


def _first_of(collection, wanted, projection):
    """{key: the document holding wanted[key]} for the keys some document holds: one
    read (an `$or` of indexed equalities), none when nothing is wanted."""
    if not wanted:
        return {}
    found = list(collection.find({"$or": [{k: v} for k, v in wanted.items()]}, projection)
                 .limit(len(wanted)))
    return {k: doc for k, v in wanted.items() for doc in found if doc.get(k) == v}
