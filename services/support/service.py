"""Support service: nameko entrypoints only; rules live in the domain, queries in the store.
Who may call which route: support/permissions.py (checked by kit.http before a worker runs).
"""
import datetime as dt
import logging
import uuid

from nameko.dependency_providers import Config

from kit import paging
from kit.auth import actor_id, caller
from kit.config import setting
from kit.consumer import event_handler
from kit.contacts import contact_of
from kit.errors import Contention, Invalid, NotFound
from kit.fields import utcnow
from kit.http import http, json_body, limits_of, query_args, read_body
from kit.links import LinkKeys, LinkTampered, check_unused, mark_used
from kit.mongo import Store
from kit.ops import Operational
from kit.preconditions import if_match as kit_if_match
from kit.timers import config_timer
from support import delivery as V
from support import domain as D
from support import schemas as S
from support.dispatcher import SYSTEM, Dispatcher
from support.permissions import PERMISSIONS
from support.store import SupportStore

log = logging.getLogger(__name__)

TAGS = ["tickets"]
RATING = "ticket-rating"  # the links' purpose: a rating link signs nothing else


def if_match(request):
    """The version an If-Match names (optional here: agents act on the ticket as it is)."""
    return kit_if_match(request, required=False)


class SupportService(Operational):
    name = "support"

    store = Store(SupportStore)
    config = Config()
    links = LinkKeys()
    permissions = PERMISSIONS

    # --- helpers (no rules: reading settings, loading, writing) ------------------------------

    def _actor(self, request):
        return actor_id(caller(request, self.config))

    def _sla(self):
        return D.SlaContext.of(setting(self.config, "SLA") or {})

    def _dispatcher(self):
        return Dispatcher(self.store, utcnow)

    def _ticket(self, ticket_id):
        ticket = self.store.get_ticket(ticket_id)
        if ticket is None:
            raise NotFound(f"No ticket {ticket_id}.")
        return ticket

    def _out(self, ticket, status=200):
        return status, {"ETag": f'"{ticket["version"]}"'}, S.TicketOut().dump(ticket)

    def _after_move(self, after, change):
        """Capacity and queue follow the status: a resolved (or closed) ticket frees its
        agent, a reopened one goes back to dispatch. The status moved from is the one the
        write replaced (its ticket.status_changed says), not an earlier read's."""
        if change is None:
            return after
        dispatcher = self._dispatcher()
        moved_from = change.events[0][1]["from_status"]
        if moved_from in D.ACTIVE and after["status"] not in D.ACTIVE and after.get("assignee"):
            dispatcher.release(after["assignee"], after["_id"])
        if after.get("queued_at") is not None and after.get("assignee") is None:
            return dispatcher.dispatch(after["_id"]) or after
        return after

    # --- tickets -----------------------------------------------------------------------------

    @http("POST", "/api/v1/tickets", body=S.TicketIn, response=S.TicketOut, status=201,
          tags=TAGS, summary="Open a ticket; it is dispatched to an agent at once or queued")
    def create_ticket(self, request):
        actor = self._actor(request)
        data = json_body(request, S.TicketIn())
        ticket, events = D.new_ticket(data, str(uuid.uuid4()), utcnow(), self._sla())
        self.store.insert_ticket(ticket, events, actor=actor)
        after = self._dispatcher().dispatch(ticket["_id"]) or self.store.get_ticket(
            ticket["_id"])
        status, headers, body = self._out(after, 201)
        return status, {**headers, "Location": f"/api/v1/tickets/{after['_id']}"}, body

    @http("GET", "/api/v1/tickets/<id>", response=S.TicketOut, tags=TAGS, summary="One ticket",
          responses={404: "No such ticket"})
    def get_ticket(self, request, id):
        self._actor(request)
        return self._out(self._ticket(id))

    @http("GET", "/api/v1/tickets", query=S.TicketQuery, response=S.TicketPage, tags=TAGS,
          summary="Tickets filtered by one of status, assignee, priority, category or "
          "account, by cursor")
    def list_tickets(self, request):
        self._actor(request)
        args = query_args(request, S.TicketQuery())
        after = paging.after(args["cursor"]) if args.get("cursor") else None
        filters = {k: args.get(k) for k in ("status", "assignee", "priority", "category",
                                             "account")}
        rows = self.store.find_tickets(filters, args["limit"] + 1, after)
        page, more = rows[:args["limit"]], len(rows) > args["limit"]
        return S.TicketPage().dump({"items": page,
                                    "next_cursor": paging.next_cursor(page, more)})

    @http("POST", "/api/v1/tickets/<id>/status", body=S.StatusIn, response=S.TicketOut,
          tags=TAGS, summary="Move a ticket (new, open, pending, resolved, closed; reopen)",
          responses={404: "No such ticket", 409: "Not an allowed move (the allowed ones are "
                     "named), the reopen window passed, or a stale If-Match"})
    def move_status(self, request, id):
        actor = self._actor(request)
        data = json_body(request, S.StatusIn())
        expected = if_match(request)
        after, change = self.store.change_ticket(id, lambda t: D.move(
            t, data["status"], utcnow(), self._sla(),
            reopen_days=float(setting(self.config, "SUPPORT.reopen_days", 7)),
            actor=actor, reason=data["reason"]),
            expected=expected, actor=actor)
        return self._out(self._after_move(after, change))

    @http("POST", "/api/v1/tickets/<id>/assign", body=S.AssignIn, response=S.TicketOut,
          tags=TAGS, summary="Assign or reassign a ticket (leads and managers); null queues",
          responses={404: "No such ticket or agent", 409: "Closed tickets stay as they are"})
    def assign_ticket(self, request, id):
        actor = self._actor(request)
        data = json_body(request, S.AssignIn())
        return self._out(self._dispatcher().assign(id, data["agent_id"], actor))

    @http("POST", "/api/v1/tickets/<id>/replies", body=S.ReplyIn, response=S.ReplyResult,
          status=201, tags=TAGS, summary="A public reply or internal note (the first public "
          "agent reply is the first response; a customer reply reopens a pending ticket)",
          responses={404: "No such ticket", 409: "Closed tickets take no replies"})
    def add_reply(self, request, id):
        actor = self._actor(request)
        data = json_body(request, S.ReplyIn())
        now = utcnow()
        ticket = self._ticket(id)
        public = data["public"] or data["author"] == "customer"
        # the ticket's change first: a reply the ticket refuses (closed) is not stored
        after, _ = self.store.change_ticket(id, lambda t: D.reply(
            t, data["author"], public, now, self._sla(), agent_id=actor, actor=actor),
            current=ticket, actor=actor)
        reply = {"_id": str(uuid.uuid4()), "ticket_id": id, "body": data["body"],
                 "public": public, "author": data["author"], "actor": actor,
                 "created_at": now}
        self.store.insert_reply(reply)
        return 201, S.ReplyResult().dump({"reply": reply, "ticket": after})

    @http("GET", "/api/v1/tickets/<id>/replies", query=S.ReplyQuery, response=S.ReplyPage,
          tags=TAGS, summary="A ticket's replies and notes, oldest first, by cursor",
          responses={404: "No such ticket"})
    def list_replies(self, request, id):
        self._actor(request)
        args = query_args(request, S.ReplyQuery())
        self._ticket(id)
        after = paging.after(args["cursor"]) if args.get("cursor") else None
        rows = self.store.find_replies(id, args["limit"] + 1, after)
        page, more = rows[:args["limit"]], len(rows) > args["limit"]
        return S.ReplyPage().dump({"items": page,
                                   "next_cursor": paging.next_cursor(page, more)})

    # --- ratings -----------------------------------------------------------------------------

    @http("GET", "/api/v1/tickets/<id>/rating-link", response=S.RatingLinkOut, tags=TAGS,
          summary="The signed link that lets the customer rate the ticket's last resolution",
          responses={404: "No such ticket", 409: "Not resolved"})
    def rating_link(self, request, id):
        self._actor(request)
        return S.RatingLinkOut().dump(self._rating_link(self._ticket(id)))

    @http("GET", "/api/v1/tickets/<id>/customer", response=S.ContactOut, tags=TAGS,
          summary="How to reach the ticket's customer (for notify and integrations)",
          responses={404: "No such ticket, or no contact e-mail address on it"})
    def ticket_customer(self, request, id):
        ticket = self._ticket(id)
        contact = ticket.get("contact") or {}
        found = contact_of(contact.get("name") or ticket.get("account"), contact)
        if found is None:
            raise NotFound(f"Ticket {id} names no contact e-mail address.")
        return S.ContactOut().dump(found)

    def _rating_link(self, ticket):
        if ticket["status"] not in (D.RESOLVED, D.CLOSED):
            raise D.NotRatable("Only a resolved ticket has a rating link.")
        csat = setting(self.config, "CSAT") or {}
        days = float(csat.get("max_age_days", 30))
        token = self.links.sign(RATING, ticket["_id"],
                                utcnow() + dt.timedelta(days=days),
                                data={"resolution": ticket["resolutions"]})
        base = str(csat.get("base_url", "")).rstrip("/")
        return {"url": f"{base}/api/v1/tickets/{ticket['_id']}/rating?token={token}",
                "token": token, "resolution": ticket["resolutions"],
                "expires_in_days": int(days)}

    @http("GET", "/api/v1/tickets/<id>/rating", query=S.RatingQuery, response=S.RatingView,
          tags=TAGS, summary="What the customer's rating link opens (no login): the ticket, "
          "and whether its resolution can still be rated; reading changes nothing",
          responses={403: "The link was altered or is for another ticket",
                     404: "No such ticket", 410: "The link expired"})
    def rating_view(self, request, id):
        # the mail's link is followed with GET (by the customer, and by mail scanners that
        # open every link): it shows the form's state; only the POST below rates
        claims = self._rating_claims(request, id)
        ticket = self._ticket(id)
        resolution = claims.data.get("resolution")
        return S.RatingView().dump({
            "ticket_id": id, "subject": ticket.get("subject"), "resolution": resolution,
            "state": D.rating_state(ticket, resolution), "expires_at": claims.expires_at})

    def _rating_claims(self, request, id):
        args = query_args(request, S.RatingQuery())
        claims = self.links.verify(args["token"], RATING, utcnow())
        if claims.subject != id:
            raise LinkTampered("This link is for another ticket.", kind="tampered")
        return claims

    @http("POST", "/api/v1/tickets/<id>/rating", body=S.RatingIn, query=S.RatingQuery,
          response=S.RatingOut, status=201, tags=TAGS,
          summary="The customer's 1-5 rating and comment, once per resolution (signed link)",
          responses={403: "The link was altered or is for another ticket",
                     409: "Already rated (or the link used), or the ticket was reopened since",
                     410: "The link expired"})
    def rate_ticket(self, request, id):
        claims = self._rating_claims(request, id)
        data = json_body(request, S.RatingIn())
        resolution = claims.data.get("resolution")
        actor = f"customer:{claims.link_id}"

        def decide(ticket):
            check_unused(ticket, claims)
            return mark_used(D.rate(ticket, resolution, data["score"], data["comment"],
                                    utcnow(), actor=actor), claims)

        self.store.change_ticket(id, decide, actor=actor)
        return 201, S.RatingOut().dump({"ticket_id": id, "score": data["score"],
                                        "comment": data["comment"], "resolution": resolution})

    # --- agents ------------------------------------------------------------------------------

    @http("GET", "/api/v1/agents", response=S.AgentList, tags=["agents"],
          summary="The support roster with each agent's load")
    def list_agents(self, request):
        self._actor(request)
        return S.AgentList().dump({"items": self.store.agents()})

    @http("PUT", "/api/v1/agents/<id>", body=S.AgentIn, response=S.AgentOut, tags=["agents"],
          summary="Add an agent or change skills, capacity, availability (leads, managers); "
          "queued tickets are offered again", responses={400: "An id longer than 100 "
                                                         "characters, or an invalid body"})
    def put_agent(self, request, id):
        self._actor(request)
        errors = S.AgentPath().validate({"id": id})
        if errors:
            raise Invalid("The agent id in the path is invalid.", errors=errors)
        data = json_body(request, S.AgentIn())
        if self.store.get_agent(id) is None:
            data = {"skills": [], "capacity": 1, "available": True, **data}
        agent = self.store.put_agent(id, data)
        self._dispatcher().offer(int(setting(self.config, "SUPPORT.dispatch_batch_size", 100)))
        return S.AgentOut().dump(self.store.get_agent(id) or agent)

    # --- delivery projects -------------------------------------------------------------------

    def _delivery_out(self, project, now=None):
        now = now or utcnow()
        steps = [{**s, "overdue": V.overdue(s, now)} for s in project["steps"]]
        return S.DeliveryOut().dump({**project, "steps": steps,
                                     "overdue": any(s["overdue"] for s in steps)})

    @http("GET", "/api/v1/deliveries", query=S.DeliveryQuery, response=S.DeliveryPage,
          tags=["deliveries"], summary="Delivery projects by status, deal or owner, or the "
          "overdue ones, by cursor")
    def list_deliveries(self, request):
        self._actor(request)
        args = query_args(request, S.DeliveryQuery())
        now = utcnow()
        overdue = args.get("overdue")
        key = "next_due_at" if overdue else "created_at"
        after = paging.after(args["cursor"]) if args.get("cursor") else None
        rows = self.store.find_deliveries(
            {k: args.get(k) for k in ("status", "deal_id", "owner_id")}, args["limit"] + 1,
            after, overdue_at=now if overdue else None)
        page, more = rows[:args["limit"]], len(rows) > args["limit"]
        return {"items": [self._delivery_out(p, now) for p in page],
                "next_cursor": paging.next_cursor(page, more, time_key=key)}

    @http("GET", "/api/v1/deliveries/<id>", response=S.DeliveryOut, tags=["deliveries"],
          summary="One delivery project with its checklist", responses={404: "No such project"})
    def get_delivery(self, request, id):
        self._actor(request)
        project = self.store.get_delivery(id)
        if project is None:
            raise NotFound(f"No delivery project {id}.")
        return 200, {"ETag": f'"{project["version"]}"'}, self._delivery_out(project)

    @http("POST", "/api/v1/deliveries/<id>/steps/<step>/complete", response=S.DeliveryOut,
          tags=["deliveries"], summary="Complete a checklist step (the acceptance step, last, "
          "emits delivery.accepted)", responses={404: "No such project or step",
                                                 409: "Acceptance before the other steps"})
    def complete_step(self, request, id, step):
        actor = self._actor(request)
        # no body= above: the OpenAPI document would call a body required, and none is.
        # A body that is sent is still read, so a malformed one or a field is refused; an
        # empty one is skipped, as eventlet gives a request without Content-Type
        # text/plain, which json_body refuses
        if read_body(request, limits_of(request).max_body_bytes):
            json_body(request, S.StepCompleteIn())
        project, _ = self.store.change_delivery(id, lambda p: V.complete(
            p, step, utcnow(), actor=actor,
            acceptance_step=setting(self.config, "DELIVERY.acceptance_step", "acceptance")),
            expected=if_match(request), actor=actor)
        return 200, {"ETag": f'"{project["version"]}"'}, self._delivery_out(project)

    @event_handler("deals", "deal.won")
    def handle_deals_deal_won(self, event):
        """One delivery project per deal: a redelivered event (or a second win after a
        reopen) finds it by its id and adds nothing."""
        project, events = V.new_project(
            event["data"], setting(self.config, "DELIVERY.templates") or {}, utcnow(),
            owner=setting(self.config, "DELIVERY.owner") or None)
        self.store.insert_delivery(project, events, actor=SYSTEM,
                                   correlationid=event.get("correlationid") or event["id"])

    # --- timers ------------------------------------------------------------------------------

    @config_timer("SUPPORT.dispatch_interval_seconds", 5)
    def dispatch_queued(self):
        """Queued tickets get agents whose capacity freed (or crashed claims complete)."""
        self._dispatcher().drain(int(setting(self.config, "SUPPORT.dispatch_batch_size", 100)))

    @config_timer("SUPPORT.sla_check_interval_seconds", 30)
    def check_sla(self):
        """ticket.sla_warning / ticket.sla_breached once per clock: the versioned write is
        the claim, so of N instances that see the same due ticket exactly one writes (the
        others read it after and find nothing to do)."""
        now = utcnow()
        batch = int(setting(self.config, "SUPPORT.sla_batch_size", 200))
        for doc in self.store.due_sla(now, batch):
            try:
                self.store.change_ticket(doc["_id"], lambda t: D.check_sla(t, now),
                                         current=doc, actor=SYSTEM)
            except Contention:
                log.info("ticket %s kept changing; its SLA check waits for the next pass",
                         doc["_id"])
