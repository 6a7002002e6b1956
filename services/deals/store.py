"""MongoDB queries of the deals service; nothing else touches its collections.

Documents hold money as strings and dates as ISO strings (FerretDB v1 has no Decimal128,
and BSON has no date-only type); `encode`/`decode` convert at this boundary so the domain
sees Decimal and datetime.date only.
"""
import datetime as dt
import time
from decimal import Decimal

from eventlet.semaphore import Semaphore
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from deals import pipelines as P
from deals.work_store import WORK_COLLECTIONS, WorkStore
from kit import versioned
from kit.buckets import BucketLog
from kit.changes import Change
from kit.config import setting
from kit.fields import utcnow
from kit.idempotency import APPLIED
from kit.mongo import BaseStore, as_stored
from kit.paging import keyset_filter
from kit.prefixsearch import query as prefix_query
from kit.textkeys import normalise_company, normalise_name

DEALS = "deals"
PIPELINES = "pipelines"
# a deal's whole history, in buckets (kit.buckets); the deal keeps its recent entries
HISTORY = "deal_history"
HIDDEN = {"outbox": 0, "outbox_since": 0, APPLIED: 0}
# field -> (its search key, the normalisation stored there)
SEARCH_KEYS = {"name": ("name_key", normalise_name),
               "account": ("account_key", normalise_company)}
TIMES = ("created_at", "updated_at", "last_activity_at", "stall_due_at", "stalled_at",
         "closed_at")


def search_keys(values):
    """The search keys (kit.textkeys) that `values` (a deal, or a change's fields)
    determine: `name_key` and `account_key`, stored beside the name and the account."""
    return {key: normalise(values[field])
            for field, (key, normalise) in SEARCH_KEYS.items() if field in values}


def encode(values):
    """Domain values -> document values (top level and the accepted quote), with the
    search keys of a name or an account written (every write of a deal comes here)."""
    out = search_keys(values)
    for key, value in values.items():
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = value.isoformat()
        elif key == "accepted_quote" and value:
            value = {**value, "total": str(value["total"])}
        elif key == "first_payment" and value:
            value = {**value, "amount": str(value["amount"])}
        out[key] = value
    return out


def decode(doc):
    if doc is None:
        return None
    deal = dict(doc)
    if deal.get("amount") is not None:
        deal["amount"] = Decimal(deal["amount"])
    if deal.get("expected_close"):
        deal["expected_close"] = dt.date.fromisoformat(deal["expected_close"])
    if deal.get("accepted_quote"):
        deal["accepted_quote"] = {**deal["accepted_quote"],
                                  "total": Decimal(deal["accepted_quote"]["total"])}
    if deal.get("first_payment"):
        deal["first_payment"] = {**deal["first_payment"],
                                 "amount": Decimal(deal["first_payment"]["amount"])}
    # (times come back aware: the kit's client is tz_aware)
    for key in TIMES:
        deal.setdefault(key, None)
    deal.setdefault("history", [])
    deal.setdefault("history_count", len(deal["history"]))  # stored before the buckets
    return deal


def _deal_write(change):
    return Change(set=encode(change.set), events=change.events, log=list(change.history))


def history_log(config):
    """The deals' history (kit.buckets), as configured (DEALS.history_*)."""
    return BucketLog("history", HISTORY,
                     size=int(setting(config, "DEALS.history_bucket_size", 100)),
                     recent=int(setting(config, "DEALS.history_recent", 10)))


class DealsStore(WorkStore, BaseStore):
    outbox_collections = (DEALS, *WORK_COLLECTIONS)

    def __init__(self, db, config=None):
        super().__init__(db, config)
        self.history = history_log(self.config)
        self.bucket_logs = {DEALS: self.history}
        # Every move decides by its pipeline's gates: reading it once per move doubled a
        # move's reads. Pipelines change rarely (admins); this instance sees its own edits
        # at once, another instance's within this many seconds.
        self._pipeline_ttl = float(setting(self.config, "DEALS.pipeline_cache_seconds", 2))
        self._pipelines = {}
        # one read per expiry: the workers that find a pipeline stale meanwhile wait for it
        self._pipeline_read = Semaphore()
        self._deals = versioned.Versioned(db[DEALS], what="deal", as_write=_deal_write,
                                          touched=self.touched, load=decode, log=self.history)

    def ensure_indexes(self):
        with self.index_batch() as db:  # one createIndexes per collection
            self._declare_indexes(db)
        self.seed_default_pipeline()

    def _declare_indexes(self, db):
        deals = db[DEALS]
        deals.create_index("lead_id")
        deals.create_index([("status", ASCENDING), ("stall_due_at", ASCENDING)])
        deals.create_index([("status", ASCENDING), ("expected_close", ASCENDING)])
        # search: one index range per key (kit.prefixsearch)
        for key, _ in SEARCH_KEYS.values():
            deals.create_index([(key, ASCENDING), ("_id", ASCENDING)], name=key)
        # lists in (created_at, _id) order, filtered by one field (keyset pages)
        deals.create_index([("created_at", ASCENDING), ("_id", ASCENDING)])
        # `team` keeps a manager's list (kit.permissions TEAM) on an index too
        for field in ("owner_id", "pipeline_id", "stage", "status", "team", "account_id"):
            deals.create_index([(field, ASCENDING), ("created_at", ASCENDING),
                                ("_id", ASCENDING)], name=f"{field}_created")
        self.ensure_work_indexes(db)

    # --- history (kit.buckets) ---------------------------------------------------------------

    def history_page(self, deal_id, before=None, limit=50):
        """A deal's history newest first below the entry number `before`, and the next
        page's cursor (None at the first entry)."""
        doc = self.db[DEALS].find_one({"_id": deal_id}, self.history.projection())
        return self.history.page(self.db, doc, before, limit)

    # --- pipelines ---------------------------------------------------------------------------

    def seed_default_pipeline(self):
        """Insert the default pipeline once; every instance may try, one wins."""
        now = utcnow()
        try:
            self.db[PIPELINES].insert_one(
                {**P.default_pipeline(), "version": 1, "created_at": now, "updated_at": now})
        except DuplicateKeyError:
            pass

    def get_pipeline(self, pipeline_id, fresh=False):
        """The pipeline (read-only: it may be this instance's cached copy, unless `fresh`:
        an edit at a version must see the stored one)."""
        asked = time.monotonic()
        cached = self._pipelines.get(pipeline_id)
        if not fresh and cached is not None and cached[0] > asked:
            return cached[1]
        if fresh or self._pipeline_ttl <= 0:
            return self._read_pipeline(pipeline_id)
        with self._pipeline_read:
            cached = self._pipelines.get(pipeline_id)
            if cached is not None and cached[0] > asked:  # read by another worker meanwhile
                return cached[1]
            return self._read_pipeline(pipeline_id)

    def _read_pipeline(self, pipeline_id):
        doc = self.db[PIPELINES].find_one({"_id": pipeline_id})
        if doc is None and pipeline_id == P.DEFAULT_PIPELINE_ID:
            self.seed_default_pipeline()  # a request may beat the start-up seeding
            doc = self.db[PIPELINES].find_one({"_id": pipeline_id})
        if doc is not None and self._pipeline_ttl > 0:
            self._pipelines[pipeline_id] = (time.monotonic() + self._pipeline_ttl, doc)
        return doc

    def list_pipelines(self):
        return list(self.db[PIPELINES].find().sort("created_at", ASCENDING))

    def insert_pipeline(self, doc):
        now = utcnow()
        doc = {**doc, "version": 1, "created_at": now, "updated_at": now}
        self.db[PIPELINES].insert_one(doc)
        self._pipelines.pop(doc["_id"], None)
        return doc

    def replace_pipeline(self, pipeline_id, version, name, stages, **more):
        """Replace name and stages (and `more` fields given, e.g. lost_reasons) if the
        pipeline is still at `version` (else None)."""
        doc = self.db[PIPELINES].find_one_and_update(
            {"_id": pipeline_id, "version": version},
            {"$set": {"name": name, "stages": stages, "updated_at": utcnow(), **more},
             "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER)
        self._pipelines.pop(pipeline_id, None)
        return doc

    def open_deals_in_stages(self, pipeline_id, stage_keys):
        if not stage_keys:
            return 0
        return self.db[DEALS].count_documents(
            {"pipeline_id": pipeline_id, "status": "open", "stage": {"$in": list(stage_keys)}})

    # --- deals -------------------------------------------------------------------------------

    def insert_deal(self, deal, events, *, actor=None, correlationid=None):
        """Insert a new deal with its first events; False if that _id exists already."""
        doc = versioned.new_entity(self.history.start(encode(deal)), events, actor=actor,
                                   correlationid=correlationid)
        try:
            self.db[DEALS].insert_one(doc)
        except DuplicateKeyError:
            return False
        self.touched(DEALS, deal["_id"], as_stored(doc))
        # the caller's deal as stored: its history numbered
        deal.update(history=doc["history"], history_count=doc[self.history.count_field])
        return True

    def get_deal(self, deal_id):
        return decode(self.db[DEALS].find_one({"_id": deal_id}, HIDDEN))

    def deal_ids_of_lead(self, lead_id):
        return [d["_id"] for d in self.db[DEALS].find({"lead_id": lead_id}, {"_id": 1})]

    def change(self, deal_id, decide, **options):
        """A versioned change of a deal (kit.versioned.Versioned.change)."""
        return self._deals.change(deal_id, decide, **options)

    def find_deals(self, filters, limit, after=None):
        """A page in (created_at, _id) order; `after` is the last row's pair."""
        query = {k: v for k, v in filters.items() if v is not None}
        if after:
            query.update(keyset_filter(after))
        cursor = self.db[DEALS].find(query, HIDDEN).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)]).limit(limit)
        return [decode(d) for d in cursor]

    def search(self, searched, filters, position, limit):
        """[(key, rows)] for each (key, prefix) searched, limit + 1 rows each, in (key, _id)
        order after `position`; `filters` are equalities checked on the range's rows."""
        return [(key, [decode(d) for d in self.db[DEALS].find(
            {**filters, **prefix_query(key, prefix, position)}, HIDDEN).sort(
                [(key, ASCENDING), ("_id", ASCENDING)]).limit(limit + 1)])
            for key, prefix in searched]

    def due_stalls(self, now, limit):
        """Stored documents (for `change(current=...)`) of open deals due to stall."""
        return list(self.db[DEALS].find(
            {"status": "open", "stalled_at": None, "stall_due_at": {"$lte": now}},
            {"outbox": 0, "outbox_since": 0}).limit(limit))

    def open_deals(self, filters, close_from=None, close_to=None):
        """Open deals' forecast fields; with a window (dates, both ends included) only
        those expected to close in it (stored as ISO dates, so compared as strings)."""
        query = {"status": "open", **{k: v for k, v in filters.items() if v is not None}}
        window = {op: day.isoformat() for op, day in (("$gte", close_from),
                                                     ("$lte", close_to)) if day}
        if window:
            query["expected_close"] = window
        fields = {"amount": 1, "currency": 1, "expected_close": 1, "probability": 1,
                  "owner_id": 1}
        return [decode(d) for d in self.db[DEALS].find(query, fields)]
