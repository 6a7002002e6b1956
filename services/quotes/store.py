"""MongoDB queries of the quotes service; nothing else touches its collections.

Documents hold money as canonical decimal strings (FerretDB v1 has no Decimal128):
`encode`/`decode` convert at this boundary, by key, so the domain sees Decimal only.
"""
from decimal import Decimal

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure

from kit import versioned
from kit.changes import Change
from kit.fields import utcnow
from kit.idempotency import APPLIED
from kit.mongo import BaseStore
from kit.paging import keyset_filter

QUOTES = "quotes"
PRODUCTS = "products"
DEALS = "deals"  # this service's view of deals (quotes.dealview)
CONTRACTS = "contracts"
HIDDEN = {"outbox": 0, "outbox_since": 0, APPLIED: 0}
# keys whose string values are Decimal amounts, wherever they sit in a document
DECIMALS = frozenset({
    "quantity", "unit_price", "list_price", "discount_percent", "discount_amount", "gross",
    "line_discount", "quote_discount", "net", "tax", "total", "subtotal", "discount",
    "percent", "amount", "paid", "paid_total", "due"})


def encode(value):
    """Domain values -> document values (Decimal -> its canonical string), recursively."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    return value


def _view_update(sequence, newest, gaps):
    """The view's update for an event: its newest facts, and the gaps only when it makes
    the view (a quote created between two writes would otherwise find the deal without
    its name)."""
    update = {"$set": {**newest, "sequence": sequence}}
    first = {k: v for k, v in gaps.items() if k not in newest}
    if first:
        update["$setOnInsert"] = first
    return update


def _missing(view, gaps):
    return {k: v for k, v in gaps.items() if view.get(k) is None}


def decode(value, key=None):
    """Document values -> domain values (strings under DECIMALS keys -> Decimal)."""
    if isinstance(value, dict):
        if key == "prices":
            return {k: Decimal(v) for k, v in value.items()}
        return {k: decode(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, key) for v in value]
    if isinstance(value, str) and key in DECIMALS:
        return Decimal(value)
    return value


def etag(doc):
    """A quote's or contract's ETag: its events plus its writes (kit.versioned's `version`
    and `revision`). The version alone stays put on a change without an event (a draft's
    edit, a new payment schedule), so an If-Match read before it would still pass; it
    cannot count writes instead, as it is the sequence consumers order events by. The sum
    grows with every write, and continues from the version-only ETags given before (a new
    document's is still "1"; one stored before revisions existed counts none)."""
    return doc.get(versioned.VERSION, 0) + doc.get(versioned.REVISION, 0)


def _at(expected, what, decide):
    """`decide`, on the state the caller's If-Match names only (else Stale, 409). Checked
    on the state read, and the write is conditional on its revision, so a write between
    the read and this one makes kit.versioned read again and this check refuse."""
    if expected is None:
        return decide

    def checked(entity):
        if etag(entity) != expected:
            raise versioned.stale(etag(entity), expected, what)
        return decide(entity)
    return checked


def _write(change):
    return Change(set=encode(change.set), push=encode(change.push), events=change.events,
                  actor=change.actor)


class QuotesStore(BaseStore):
    outbox_collections = (QUOTES, CONTRACTS)

    def __init__(self, db, config=None):
        super().__init__(db, config)
        self._quotes = versioned.Versioned(db[QUOTES], what="quote", as_write=_write,
                                           touched=self.touched, load=decode)
        self._contracts = versioned.Versioned(db[CONTRACTS], what="contract",
                                              as_write=_write, touched=self.touched,
                                              load=decode)

    def ensure_indexes(self):
        with self.index_batch() as db:  # one createIndexes per collection
            self._declare_indexes(db)

    def _declare_indexes(self, db):
        quotes = db[QUOTES]
        quotes.create_index([("deal_id", ASCENDING), ("created_at", ASCENDING),
                             ("_id", ASCENDING)], name="deal_created")
        quotes.create_index([("status", ASCENDING), ("valid_until", ASCENDING)],
                            name="status_valid_until")
        # the lists without a deal: everything, by status (a manager's approvals, what
        # finance follows), and a rep's own
        for kind in (quotes, db[CONTRACTS]):
            kind.create_index([("created_at", ASCENDING), ("_id", ASCENDING)],
                              name="created")
            kind.create_index([("status", ASCENDING), ("created_at", ASCENDING),
                               ("_id", ASCENDING)], name="status_created")
            kind.create_index([("owner_id", ASCENDING), ("created_at", ASCENDING),
                               ("_id", ASCENDING)], name="owner_created")
        db[PRODUCTS].create_index([("created_at", ASCENDING), ("_id", ASCENDING)],
                                  name="created")
        contracts = db[CONTRACTS]
        contracts.create_index([("deal_id", ASCENDING), ("created_at", ASCENDING),
                                ("_id", ASCENDING)], name="deal_created")
        contracts.create_index("next_due_at", name="next_due_at")

    # --- price book ------------------------------------------------------------------------

    def insert_product(self, product):
        now = utcnow()
        doc = {**encode(product), "version": 1, "created_at": now, "updated_at": now}
        try:
            self.db[PRODUCTS].insert_one(doc)
        except DuplicateKeyError:
            return None
        return decode(doc)

    def get_product(self, code):
        return decode(self.db[PRODUCTS].find_one({"_id": code}))

    def products(self, codes):
        """{code: product} of these codes (one look-up each: `_id` equality is indexed)."""
        found = {}
        for code in dict.fromkeys(codes):
            doc = self.get_product(code)
            if doc is not None:
                found[code] = doc
        return found

    def replace_product(self, code, expected, values):
        """New values if the product is still at version `expected` (else None)."""
        return decode(self.db[PRODUCTS].find_one_and_update(
            {"_id": code, "version": expected},
            {"$set": {**encode(values), "updated_at": utcnow()}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER))

    def product_page(self, limit, after=None):
        query = keyset_filter(after) if after else {}
        return [decode(d) for d in self.db[PRODUCTS].find(query).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)]).limit(limit)]

    # --- deals (the view) --------------------------------------------------------------------

    def get_deal(self, deal_id):
        return self.db[DEALS].find_one({"_id": deal_id})

    def project_deal(self, deal_id, sequence, newest, gaps):
        """Apply a deal event: its newest facts only if no newer event was applied (one
        conditional upsert: the sequence is the proof), then fill the gaps it knows."""
        try:
            self.db[DEALS].update_one({"_id": deal_id, "sequence": {"$lt": sequence}},
                                      _view_update(sequence, newest, gaps), upsert=True)
        except DuplicateKeyError:
            pass  # a newer (or this same) event was applied already
        if gaps:
            doc = self.db[DEALS].find_one({"_id": deal_id}) or {}
            missing = _missing(doc, gaps)
            if missing:
                self.db[DEALS].update_one({"_id": deal_id}, {"$set": missing})

    def project_deals(self, folded):
        """Apply a batch's deal events, folded one per deal (quotes.dealview.fold), as
        `project_deal` would one by one, in three round trips: one bulk of the conditional
        upserts, one read of the views, one bulk of the gap fills.

        FerretDB v1 stops a bulk update at its first error whatever `ordered` says (here the
        duplicate `_id` of an event older than the view) and reports neither which
        statement failed nor how many were applied; the read back tells: a view at the
        event's sequence or later took it or has newer facts, and any other event goes
        through `project_deal` on its own."""
        if len(folded) < 2:
            for item in folded:
                self.project_deal(*item)
            return
        # the update command as is: pymongo's bulk_write fails on FerretDB's answer to a
        # bulk that met an error (it has no `n` nor `nModified`)
        self.db.command("update", DEALS, ordered=False, updates=[
            {"q": {"_id": deal_id, "sequence": {"$lt": sequence}},
             "u": _view_update(sequence, newest, gaps), "upsert": True}
            for deal_id, sequence, newest, gaps in folded])
        views = {doc["_id"]: doc for doc in self.db[DEALS].find(
            {"_id": {"$in": [deal_id for deal_id, *_ in folded]}})}
        fills = []
        for deal_id, sequence, newest, gaps in folded:
            view = views.get(deal_id)
            if view is None or view.get("sequence", 0) < sequence:
                self.project_deal(deal_id, sequence, newest, gaps)
                continue
            missing = _missing(view, gaps)
            if missing:
                fills.append({"q": {"_id": deal_id}, "u": {"$set": missing}})
        if fills:
            reply = self.db.command("update", DEALS, ordered=False, updates=fills)
            if reply.get("writeErrors"):
                raise OperationFailure(f"filling deal views: {reply['writeErrors']}")

    # --- quotes ----------------------------------------------------------------------------

    def insert_quote(self, quote, events, *, actor=None):
        self.db[QUOTES].insert_one(versioned.new_entity(encode(quote), events, actor=actor))
        self.touched(QUOTES, quote["_id"])
        return {**quote, "version": len(events)}

    def get_quote(self, quote_id):
        return decode(self.db[QUOTES].find_one({"_id": quote_id}, HIDDEN))

    def change_quote(self, quote_id, decide, *, expected=None, **options):
        """A versioned change of a quote (kit.versioned.Versioned.change); `expected` is
        the caller's If-Match, an `etag`."""
        return self._quotes.change(quote_id, _at(expected, "quote", decide), **options)

    def quotes_of_deal(self, deal_id, limit, after=None, scope=None):
        """A page of a deal's quotes in (created_at, _id) order; `scope` narrows it (a
        rep's own)."""
        return self.quotes_page({"deal_id": deal_id}, limit, after, scope)

    def quotes_page(self, filters, limit, after=None, scope=None):
        """A page of the quotes matching `filters` (deal_id, status; each has an index
        led by it, as has the scope's owner_id) in (created_at, _id) order."""
        return self._page(QUOTES, filters, limit, after, scope)

    def _page(self, collection, filters, limit, after, scope):
        query = {**filters, **(scope or {})}
        if after:
            query.update(keyset_filter(after))
        return [decode(d) for d in self.db[collection].find(query, HIDDEN).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)]).limit(limit)]

    def due_expiries(self, now, limit):
        """Stored documents of sent quotes past their validity (for change(current=...))."""
        return [decode(d) for d in self.db[QUOTES].find(
            {"status": "sent", "valid_until": {"$lte": now}}, HIDDEN).limit(limit)]

    # --- contracts -------------------------------------------------------------------------

    def insert_contract(self, contract, events, *, actor=None, correlationid=None):
        """Insert a new contract with its first events; False if its _id exists."""
        try:
            self.db[CONTRACTS].insert_one(versioned.new_entity(
                encode(contract), events, actor=actor, correlationid=correlationid))
        except DuplicateKeyError:
            return False
        self.touched(CONTRACTS, contract["_id"])
        return True

    def get_contract(self, contract_id):
        return decode(self.db[CONTRACTS].find_one({"_id": contract_id}, HIDDEN))

    def change_contract(self, contract_id, decide, *, expected=None, **options):
        """As change_quote, for a contract."""
        return self._contracts.change(contract_id, _at(expected, "contract", decide),
                                      **options)

    def contracts_due(self, now):
        """Contracts whose first unpaid milestone fell due by `now` (only those)."""
        return [decode(d) for d in self.db[CONTRACTS].find(
            {"next_due_at": {"$lte": now}}, {"currency": 1, "status": 1, "milestones": 1})]

    def contracts_of_deal(self, deal_id, limit=200, scope=None):
        return self.contracts_page({"deal_id": deal_id}, limit, scope=scope)

    def contracts_page(self, filters, limit, after=None, scope=None):
        """As quotes_page, for contracts (deal_id, status)."""
        return self._page(CONTRACTS, filters, limit, after, scope)
