"""A minimal service built only from the kit, to test the kit without any business rules.

`things` emits catalog events (lead.* types, as if it were the leads service) through the
outbox; `tally` consumes them idempotently and can be told to fail.
"""
import uuid

from marshmallow import Schema, fields, validate
from nameko.rpc import rpc
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from kit.consumer import event_handler
from kit.errors import Conflict, NotFound
from kit.events import new_event
from kit.fields import utcnow
from kit.http import http, json_body
from kit.idempotency import apply_once
from kit.mongo import BaseStore, Store
from kit.ops import Operational
from kit.outbox import new_document, with_events


class ThingIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    source = fields.String(load_default="api", validate=validate.OneOf(["api", "web_form"]))


class ThingStore(BaseStore):
    outbox_collections = ("things",)

    def ensure_indexes(self):
        self.db.things.create_index("name", unique=True)

    def create(self, name, source):
        _id = str(uuid.uuid4())
        now = utcnow()
        event = new_event("lead.created", _id, {
            "lead_id": _id, "name": name, "source": source, "score": 0, "grade": "D",
            "created_at": now}, 1)
        try:
            self.db.things.insert_one(new_document(
                {"_id": _id, "name": name, "version": 1, "created_at": now}, [event]))
        except DuplicateKeyError:
            raise Conflict(f"A thing named {name!r} exists.") from None
        self.touched("things", _id)
        return _id, event

    def rename(self, _id, name):
        doc = self.db.things.find_one({"_id": _id})
        if doc is None:
            raise NotFound(f"No thing {_id}.")
        event = new_event("lead.assigned", _id, {"lead_id": _id, "owner_id": name,
                                                 "rule": "manual"}, doc["version"] + 1)
        doc = self.db.things.find_one_and_update(
            {"_id": _id}, with_events({"$set": {"name": name}, "$inc": {"version": 1}},
                                      [event]),
            return_document=ReturnDocument.AFTER)
        self.touched("things", _id)
        return doc

    def get(self, _id):
        doc = self.db.things.find_one({"_id": _id}, {"outbox": 0})
        if doc is None:
            raise NotFound(f"No thing {_id}.")
        return doc

    def bump(self, key):
        """An atomic increment, an insert and a read, to load the pool concurrently."""
        n = self.db.counters.find_one_and_update(
            {"_id": key}, {"$inc": {"n": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER)["n"]
        self.db.log.insert_one({"_id": str(uuid.uuid4()), "key": key, "n": n})
        assert self.db.log.find_one({"key": key, "n": n}) is not None
        return n


class ThingsService(Operational):
    name = "things"
    store = Store(ThingStore)

    @http("POST", "/api/v1/things", body=ThingIn, status=201)
    def create_thing(self, request):
        data = json_body(request, ThingIn())
        _id, _ = self.store.create(data["name"], data["source"])
        return {"id": _id}

    @http("GET", "/api/v1/things/<id>")
    def get_thing(self, request, id):
        return self.store.get(id)



class ThingsRpcService(ThingsService):
    """The same, with RPC entrypoints (which hold a broker connection of their own)."""

    @rpc
    def create(self, name):
        return self.store.create(name, "api")[0]

    @rpc
    def rename(self, _id, name):
        return self.store.rename(_id, name)["version"]

    @rpc
    def bump(self, key):
        return self.store.bump(key)


class TallyStore(BaseStore):
    def count(self, event, fail_times):
        """Apply once per event id; raise the first `fail_times` deliveries."""
        attempts = self.db.attempts.find_one_and_update(
            {"_id": event["id"]}, {"$inc": {"n": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER)["n"]
        if attempts <= fail_times:
            raise RuntimeError(f"induced failure {attempts}")
        return apply_once(self.db.tally, {"_id": "tally"}, {"$inc": {"n": 1}}, event["id"],
                          upsert=True)

    def tally(self):
        doc = self.db.tally.find_one({"_id": "tally"}) or {}
        return doc.get("n", 0)

    def attempts(self, event_id):
        return (self.db.attempts.find_one({"_id": event_id}) or {}).get("n", 0)


class TallyService(Operational):
    name = "tally"
    store = Store(TallyStore)
    fail_times = 0

    @event_handler("leads", "lead.created")
    def handle_leads_lead_created(self, event):
        self.store.count(event, self.fail_times)
