"""MongoDB queries of deal activities and tasks (deals.activities), part of the deals store.

Collections: `activities` (one per logged call, e-mail, meeting or note, with its outbox),
`tasks` (a deal's tasks, with their outboxes).
"""
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from kit import versioned
from kit.errors import Conflict, NotFound

ACTIVITIES, TASKS, FIELDS = "activities", "tasks", "field_defs"
WORK_COLLECTIONS = (ACTIVITIES, TASKS)
SHOWN = {"outbox": 0, "outbox_since": 0}


class WorkStore:
    """Mixed into DealsStore (one database, one relay)."""

    def _task_changes(self):
        if "_versioned_tasks" not in self.__dict__:
            self._versioned_tasks = versioned.Versioned(self.db[TASKS], what="task",
                                                        touched=self.touched)
        return self._versioned_tasks

    def ensure_work_indexes(self, db):
        """Declared in the deals store's index batch (`db`, kit.mongo.IndexBatch)."""
        db[ACTIVITIES].create_index([("deal_id", ASCENDING), ("at", ASCENDING)],
                                    name="deal_at")
        db[TASKS].create_index([("fired", ASCENDING), ("due_at", ASCENDING)], name="due")
        db[TASKS].create_index([("deal_id", ASCENDING), ("due_at", ASCENDING)],
                               name="deal_due")
        db[FIELDS].create_index([("entity", ASCENDING), ("key", ASCENDING)],
                                name="entity_key")

    # --- custom field definitions (deals.fields) ---------------------------------------------

    def insert_field(self, doc):
        try:
            self.db[FIELDS].insert_one(dict(doc))
        except DuplicateKeyError:
            raise Conflict(f"A {doc['entity']} field {doc['key']!r} exists.",
                           existing_id=doc["key"]) from None
        return doc

    def field_defs(self, entity):
        """{key: definition} of an entity's custom fields (a few, defined by admins)."""
        return {d["key"]: d for d in self.db[FIELDS].find({"entity": entity})
                .sort([("entity", ASCENDING), ("key", ASCENDING)])}

    def insert_activity(self, doc, events, actor=None):
        self.db[ACTIVITIES].insert_one(versioned.new_entity(dict(doc), events, actor=actor))
        self.touched(ACTIVITIES, doc["_id"])
        return doc

    def activities_of(self, deal_id, limit):
        return list(self.db[ACTIVITIES].find({"deal_id": deal_id}, SHOWN)
                    .sort([("deal_id", ASCENDING), ("at", ASCENDING)]).limit(limit))

    def insert_task(self, task, actor=None):
        self.db[TASKS].insert_one(versioned.new_entity(dict(task), [], actor=actor))
        return task

    def tasks_of(self, deal_id):
        return list(self.db[TASKS].find({"deal_id": deal_id}, SHOWN)
                    .sort([("deal_id", ASCENDING), ("due_at", ASCENDING)]))

    def change_task(self, deal_id, task_id, decide):
        def of_deal(task):
            if task["deal_id"] != deal_id:
                raise NotFound(f"No task {task_id} on deal {deal_id}.")
            return decide(task)

        task, _ = self._task_changes().change(task_id, of_deal)
        return task

    def fire_due_tasks(self, now, decide, limit=200):
        """Fire due tasks as `decide(task, deal)` says; the versioned write is the claim, so
        with N instances each task fires once. Returns how many fired an event."""
        due = list(self.db[TASKS].find({"fired": False, "due_at": {"$lte": now}}, SHOWN)
                   .sort([("fired", ASCENDING), ("due_at", ASCENDING)]).limit(limit))
        fired = 0
        deals = {}
        for task in due:
            if task["deal_id"] not in deals:
                deals[task["deal_id"]] = self.db.deals.find_one(
                    {"_id": task["deal_id"]}, {"status": 1, "owner_id": 1})
            _, change = self._task_changes().change(
                task["_id"], lambda t: decide(t, deals[t["deal_id"]]), current=task)
            if change is not None and change.events:
                fired += 1
        return fired
