"""MongoDB queries of the support service; nothing else touches its collections.

- `tickets`: one document per ticket, with its SLA clocks and its outbox; `sla_due_at`
  (the next SLA check) and `queued_at` (waiting for an agent) are indexed, so timers read
  only what is due.
- `replies`: public replies and internal notes, one document each (a conversation does
  not grow the ticket).
- `agents`: the roster with each agent's load: `load` counts and `tickets` names the
  tickets an agent holds. A claim raises both in one conditional update guarded by
  `load < capacity`, so two tickets arriving at once never both pass the cap; naming the
  ticket makes claim and release idempotent, and lets dispatch finish a claim whose
  ticket write was lost (a crash between the two writes).
- `deliveries`: one delivery project per won deal (its id derives from the deal's).
"""
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from kit import versioned
from kit.config import setting
from kit.idempotency import APPLIED
from kit.mongo import BaseStore
from kit.outbox import EPOCH, OUTBOX, SINCE
from kit.paging import keyset_filter
from support import domain as D
from support.dispatch import roster_entry

TICKETS = "tickets"
REPLIES = "replies"
AGENTS = "agents"
DELIVERIES = "deliveries"
HIDDEN = {OUTBOX: 0, SINCE: 0, APPLIED: 0}
LIST_FILTERS = ("status", "assignee", "priority", "category", "account")
ORDER = [("created_at", ASCENDING), ("_id", ASCENDING)]


def _page(collection, query, limit, after):
    if after:
        query = {**query, **keyset_filter(after)}
    return list(collection.find(query, HIDDEN).sort(ORDER).limit(limit))


class SupportStore(BaseStore):
    outbox_collections = (TICKETS, DELIVERIES)

    def __init__(self, db, config=None):
        super().__init__(db, config)
        self._tickets = versioned.Versioned(db[TICKETS], what="ticket", touched=self.touched)
        self._deliveries = versioned.Versioned(db[DELIVERIES], what="delivery project",
                                               touched=self.touched)

    def ensure_indexes(self):
        with self.index_batch() as db:  # one createIndexes per collection
            self._declare_indexes(db)
        self._seed_roster()

    def _declare_indexes(self, db):
        tickets = db[TICKETS]
        tickets.create_index(ORDER)
        for field in LIST_FILTERS:
            tickets.create_index([(field, ASCENDING), *ORDER], name=f"{field}_created")
        tickets.create_index([("sla_due_at", ASCENDING)])
        tickets.create_index([("queued_at", ASCENDING), ("_id", ASCENDING)])
        db[REPLIES].create_index([("ticket_id", ASCENDING), *ORDER])
        db[AGENTS].create_index("tickets")
        deliveries = db[DELIVERIES]
        deliveries.create_index(ORDER)
        for field in ("status", "deal_id", "owner_id"):
            deliveries.create_index([(field, ASCENDING), *ORDER], name=f"{field}_created")
        deliveries.create_index([("next_due_at", ASCENDING), ("_id", ASCENDING)])

    def _seed_roster(self):
        self.seed_agents([roster_entry(e) for e in
                          setting(self.config, "SUPPORT.agents") or ()])

    # --- tickets -----------------------------------------------------------------------------

    def insert_ticket(self, ticket, events, *, actor=None):
        self.db[TICKETS].insert_one(versioned.new_entity(dict(ticket), events, actor=actor))
        self.touched(TICKETS, ticket["_id"])

    def get_ticket(self, ticket_id):
        return self.db[TICKETS].find_one({"_id": ticket_id}, HIDDEN)

    def change_ticket(self, ticket_id, decide, **options):
        """A versioned change of a ticket (kit.versioned.Versioned.change)."""
        return self._tickets.change(ticket_id, decide, **options)

    def find_tickets(self, filters, limit, after=None):
        """A page in (created_at, _id) order, filtered by at most one indexed field."""
        query = {k: v for k, v in filters.items() if v is not None}
        return _page(self.db[TICKETS], query, limit, after)

    def queued(self, limit):
        """Tickets waiting for an agent, oldest first (support.domain.dispatchable)."""
        # a range (not $ne null), which the queued_at index answers; closing clears
        # queued_at, the status test leaves out closed tickets stored queued before that
        return list(self.db[TICKETS].find(
            {"queued_at": {"$gte": EPOCH}, "status": {"$ne": D.CLOSED}}, {"category": 1})
            .sort([("queued_at", ASCENDING), ("_id", ASCENDING)]).limit(limit))

    def due_sla(self, now, limit):
        """Stored documents (for `change_ticket(current=...)`) with an SLA check due."""
        return list(self.db[TICKETS].find({"sla_due_at": {"$lte": now}},
                                          {OUTBOX: 0, SINCE: 0}).limit(limit))

    # --- replies -----------------------------------------------------------------------------

    def insert_reply(self, reply):
        self.db[REPLIES].insert_one(dict(reply))

    def find_replies(self, ticket_id, limit, after=None):
        return _page(self.db[REPLIES], {"ticket_id": ticket_id}, limit, after)

    # --- agents ------------------------------------------------------------------------------

    def seed_agents(self, entries):
        """Add the configured agents the roster lacks (edits made through the API stay)."""
        for entry in entries:
            try:
                self.db[AGENTS].insert_one({**entry, "load": 0, "tickets": []})
            except DuplicateKeyError:
                pass

    def agents(self):
        agents = list(self.db[AGENTS].find().sort("_id", ASCENDING))
        if not agents:
            # a request may beat the start-up seeding (or read before it ended): seeding
            # is idempotent, so do it here too
            self._seed_roster()
            agents = list(self.db[AGENTS].find().sort("_id", ASCENDING))
        return agents

    def get_agent(self, agent_id):
        return self.db[AGENTS].find_one({"_id": agent_id})

    def put_agent(self, agent_id, fields):
        """Create or edit an agent's skills, capacity and availability (not its load)."""
        self.db[AGENTS].update_one(
            {"_id": agent_id},
            {"$set": fields, "$setOnInsert": {"load": 0, "tickets": []}}, upsert=True)
        return self.get_agent(agent_id)

    def claim(self, agent_id, ticket_id, *, over_capacity=False):
        """Raise the agent's load by this ticket unless that passes the cap (or the agent is
        away); True when the agent holds the ticket now (claimed before included)."""
        agent = self.get_agent(agent_id)
        if agent is None:
            return False
        if ticket_id in agent.get("tickets", []):
            return True
        guard = {"_id": agent_id, "tickets": {"$ne": ticket_id}}
        if not over_capacity:
            if not agent.get("available", True) or agent["load"] >= agent["capacity"]:
                return False
            guard.update({"available": True, "capacity": agent["capacity"],
                          "load": {"$lt": agent["capacity"]}})
        done = self.db[AGENTS].update_one(
            guard, {"$inc": {"load": 1}, "$push": {"tickets": ticket_id}})
        if done.modified_count:
            return True
        return ticket_id in (self.get_agent(agent_id) or {}).get("tickets", [])

    def release(self, agent_id, ticket_id):
        """Lower the agent's load by this ticket (nothing if it does not hold it)."""
        done = self.db[AGENTS].update_one(
            {"_id": agent_id, "tickets": ticket_id},
            {"$inc": {"load": -1}, "$pullAll": {"tickets": [ticket_id]}})
        return bool(done.modified_count)

    def holder_of(self, ticket_id):
        """The agent whose load counts this ticket, if any."""
        agent = self.db[AGENTS].find_one({"tickets": ticket_id}, {"_id": 1})
        return agent["_id"] if agent else None

    # --- delivery projects ---------------------------------------------------------------------

    def insert_delivery(self, project, events, *, actor=None, correlationid=None):
        """Insert a delivery project with its first events; False if the deal has one."""
        try:
            self.db[DELIVERIES].insert_one(versioned.new_entity(
                dict(project), events, actor=actor, correlationid=correlationid))
        except DuplicateKeyError:
            return False
        self.touched(DELIVERIES, project["_id"])
        return True

    def get_delivery(self, delivery_id):
        return self.db[DELIVERIES].find_one({"_id": delivery_id}, HIDDEN)

    def change_delivery(self, delivery_id, decide, **options):
        return self._deliveries.change(delivery_id, decide, **options)

    def find_deliveries(self, filters, limit, after=None, overdue_at=None):
        """A page in (created_at, _id) order; `overdue_at`: only projects with a step due
        before then and not done (the indexed `next_due_at`)."""
        if overdue_at is not None:
            query = {"next_due_at": {"$lt": overdue_at}}
            if after:
                query.update(keyset_filter(after, time_key="next_due_at"))
            return list(self.db[DELIVERIES].find(query, HIDDEN).sort(
                [("next_due_at", ASCENDING), ("_id", ASCENDING)]).limit(limit))
        query = {k: v for k, v in filters.items() if v is not None}
        return _page(self.db[DELIVERIES], query, limit, after)
