"""Ticket rules: the lifecycle, assignment, replies, SLA checks and ratings. Pure: each
function returns the change it makes (kit.changes.Change: fields to set, events as (type,
data) pairs) or None when there is nothing to do; the store writes both in one
single-document update. The SLA clocks are support.sla's; a ticket carries them under
`sla` and the earliest instant a timer has work for it in the indexed `sla_due_at`.

Lifecycle: new -> open -> pending (on the customer) -> resolved -> closed. A resolved
ticket reopens (back to open, and to the queue) within `reopen_days` of its resolution;
closed is final: it leaves the queue, and its assignment no longer changes. While pending,
the SLA clocks pause. Every move emits ticket.status_changed, and resolving and reopening
ticket.resolved / ticket.reopened too.
"""
import datetime as dt

from kit.changes import Change
from kit.errors import Conflict
from support import sla

NEW, OPEN, PENDING, RESOLVED, CLOSED = "new", "open", "pending", "resolved", "closed"
STATUSES = (NEW, OPEN, PENDING, RESOLVED, CLOSED)
MOVES = {
    NEW: (OPEN, PENDING, RESOLVED),
    OPEN: (PENDING, RESOLVED),
    PENDING: (OPEN, RESOLVED),
    RESOLVED: (OPEN, CLOSED),
    CLOSED: (),
}
# statuses in which a ticket holds its agent's capacity
ACTIVE = (NEW, OPEN, PENDING)


class InvalidMove(Conflict):
    title = "Invalid status change"


class ReopenExpired(Conflict):
    title = "Reopen window passed"


class AlreadyRated(Conflict):
    title = "Already rated"


class NotRatable(Conflict):
    title = "Not resolved"


def _common(ticket):
    return {"ticket_id": ticket["_id"], "priority": ticket["priority"],
            "category": ticket.get("category")}


class SlaContext:
    """What SLA arithmetic needs besides the ticket: the calendars and the warning share.
    `of(settings)` builds one per distinct configuration (calendars hold holiday tables)."""

    _built = {}

    @classmethod
    def of(cls, settings):
        key = repr(sorted(settings.items()))
        if key not in cls._built:
            cls._built[key] = cls(settings)
        return cls._built[key]

    def __init__(self, settings):
        self.settings = settings
        self.calendars = sla.calendars(settings)
        self.fraction = float(settings.get("warning_fraction", 0.8))

    def policy(self, priority, tier):
        return sla.policy(self.settings, priority, tier)

    def calendar(self, ticket):
        return self.calendars[ticket["sla"]["calendar"]]


def _clocks_set(clocks, calendar_name, now):
    return {"sla": {"calendar": calendar_name, "clocks": clocks},
            "sla_due_at": sla.next_check(clocks), "updated_at": now}


def new_ticket(data, ticket_id, now, ctx):
    """(document, events) of a new ticket: status new, queued for dispatch, clocks running."""
    rule = ctx.policy(data["priority"], data.get("tier"))
    cal = ctx.calendars[rule["calendar"]]
    clocks = {kind: sla.start(rule[kind], now, cal, ctx.fraction) for kind in sla.KINDS}
    ticket = {
        "_id": ticket_id,
        **{k: data.get(k) for k in ("account", "contact", "deal_id", "subject", "description",
                                    "channel", "priority", "category", "tier")},
        "status": NEW, "assignee": None, "previous_assignee": None, "queued_at": now,
        "created_at": now, "first_responded_at": None, "resolved_at": None,
        "resolutions": 0, "rated": [],
        **_clocks_set(clocks, rule["calendar"], now),
    }
    return ticket, [("ticket.opened", {
        **_common(ticket), "account": ticket["account"], "deal_id": ticket["deal_id"],
        "channel": ticket["channel"], "subject": ticket["subject"], "opened_at": now,
        "tier": ticket.get("tier"),
        "first_response_due": clocks["first_response"]["due_at"],
        "resolution_due": clocks["resolution"]["due_at"]})]


def _status_changed(ticket, to, now):
    return ("ticket.status_changed", {**_common(ticket), "from_status": ticket["status"],
                                      "to_status": to, "agent_id": ticket.get("assignee"),
                                      "changed_at": now})


def dispatchable(ticket):
    """Whether dispatch may give the ticket to an agent: queued, and not closed (a closed
    ticket stored as queued, as un-assigning one did before it was refused, stays put)."""
    return ticket.get("queued_at") is not None and ticket["status"] != CLOSED


def _check_assignable(ticket):
    if ticket["status"] == CLOSED:
        raise InvalidMove("A closed ticket cannot be assigned.", status=CLOSED, allowed=[])


def check_move(ticket, to):
    allowed = MOVES[ticket["status"]]
    if to not in allowed:
        names = ", ".join(allowed) or "none (closed is final)"
        raise InvalidMove(f"A {ticket['status']} ticket cannot move to {to}; allowed: {names}.",
                          status=ticket["status"], allowed=list(allowed))


def move(ticket, to, now, ctx, *, reopen_days, actor=None, reason=None):
    """The change of a status move (InvalidMove naming the allowed ones otherwise)."""
    check_move(ticket, to)
    cal = ctx.calendar(ticket)
    clocks = dict(ticket["sla"]["clocks"])
    events = [_status_changed(ticket, to, now)]
    changes = {"status": to}
    if to == PENDING:
        clocks = {k: sla.pause(c, now, cal) for k, c in clocks.items()}
    elif ticket["status"] == PENDING and to == OPEN:
        clocks = {k: sla.resume(c, now, cal, ctx.fraction) for k, c in clocks.items()}
    if to == CLOSED:
        # a resolved ticket may still be queued (resolved before anyone took it, or
        # un-assigned since); once closed, dispatch must not find it
        changes["queued_at"] = None
    if to == RESOLVED:
        clocks = {k: sla.stop(c, now, cal) for k, c in clocks.items()}
        resolutions = ticket.get("resolutions", 0) + 1
        changes.update({"resolved_at": now, "resolutions": resolutions})
        events.append(("ticket.resolved", {
            **_common(ticket), "agent_id": ticket.get("assignee"),
            "opened_at": ticket["created_at"], "resolved_at": now,
            "resolution_seconds": (now - ticket["created_at"]).total_seconds(),
            "resolution": resolutions, "sla_met": sla.met(clocks["resolution"])}))
    elif ticket["status"] == RESOLVED and to == OPEN:
        window = dt.timedelta(days=reopen_days)
        if now > ticket["resolved_at"] + window:
            raise ReopenExpired(
                f"Resolved tickets reopen within {reopen_days} days; this one was resolved "
                f"at {ticket['resolved_at'].isoformat()}. Open a new ticket instead.",
                resolved_at=ticket["resolved_at"].isoformat())
        clocks["resolution"] = sla.restart(clocks["resolution"], now, cal, ctx.fraction)
        # back to the queue; dispatch offers it to the agent who had it first
        changes.update({"assignee": None, "queued_at": now,
                        "previous_assignee": ticket.get("assignee")})
        events.append(("ticket.reopened", {**_common(ticket), "reason": reason,
                                           "reopened_at": now}))
    return Change(set={**changes, **_clocks_set(clocks, ticket["sla"]["calendar"], now)},
                  events=events, actor=actor)


def assign(ticket, agent_id, now, *, rule, actor=None):
    """Give the ticket to `agent_id` (a new ticket opens); None if it has that agent."""
    if ticket["assignee"] == agent_id:
        return None
    _check_assignable(ticket)
    changes = {"assignee": agent_id, "queued_at": None, "updated_at": now}
    events = [("ticket.assigned", {**_common(ticket), "agent_id": agent_id, "rule": rule,
                                   "previous_agent_id": ticket["assignee"]})]
    if ticket["status"] == NEW:
        events.append(_status_changed({**ticket, "assignee": agent_id}, OPEN, now))
        changes["status"] = OPEN
    return Change(set=changes, events=events, actor=actor)


def requeue(ticket, now, *, actor=None):
    """Take the ticket from its agent and put it back in the queue (a lead's decision, so
    dispatch does not prefer that agent again, unlike after a reopen)."""
    if ticket["assignee"] is None:
        return None
    _check_assignable(ticket)
    return Change(set={"assignee": None, "previous_assignee": None,
                       "queued_at": now, "updated_at": now},
                  events=[("ticket.assigned", {**_common(ticket), "agent_id": None,
                                               "rule": "queue",
                                               "previous_agent_id": ticket["assignee"]})],
                  actor=actor)


def reply(ticket, author, public, now, ctx, *, agent_id=None, actor=None):
    """A reply's effect on the ticket: an agent's first public reply stops the first-response
    clock (ticket.first_responded), a customer's reply reopens a pending ticket. None
    when it changes nothing (internal notes, later replies)."""
    if ticket["status"] == CLOSED:
        raise InvalidMove("A closed ticket takes no replies; open a new ticket.",
                          status=CLOSED, allowed=[])
    if author == "customer":
        if ticket["status"] == PENDING:
            return move(ticket, OPEN, now, ctx, reopen_days=0, actor=actor)
        return None
    if not public or ticket["first_responded_at"] is not None:
        return None
    cal = ctx.calendar(ticket)
    clocks = dict(ticket["sla"]["clocks"])
    clocks["first_response"] = sla.stop(clocks["first_response"], now, cal)
    return Change(set={"first_responded_at": now,
                       **_clocks_set(clocks, ticket["sla"]["calendar"], now)},
                  events=[("ticket.first_responded", {
                      **_common(ticket), "agent_id": agent_id or ticket["assignee"],
                      "opened_at": ticket["created_at"], "responded_at": now,
                      "first_response_seconds": (now - ticket["created_at"]).total_seconds(),
                      "sla_met": sla.met(clocks["first_response"])})],
                  actor=actor)


def check_sla(ticket, now):
    """ticket.sla_warning / ticket.sla_breached for the thresholds reached (None: none)."""
    clocks, fired = sla.due(ticket["sla"]["clocks"], now)
    if not fired:
        return None
    events = []
    for kind, what, due_at in fired:
        base = {**_common(ticket), "agent_id": ticket.get("assignee"), "kind": kind,
                "due_at": due_at}
        if what == "warning":
            events.append(("ticket.sla_warning", {**base, "warned_at": now}))
        else:
            events.append(("ticket.sla_breached", {**base, "breached_at": now}))
    return Change(set={"sla": {**ticket["sla"], "clocks": clocks},
                       "sla_due_at": sla.next_check(clocks)},
                  events=events, actor=None)


def rating_state(ticket, resolution):
    """What a link for `resolution` can still do: "ratable" (`rate` takes it), "rated"
    (the resolution has its rating, whatever the ticket did since), or "reopened" (the
    ticket is no longer at that resolution; the next one gets a link of its own)."""
    if resolution in ticket.get("rated", []):
        return "rated"
    if ticket["status"] not in (RESOLVED, CLOSED) or resolution != ticket.get("resolutions"):
        return "reopened"
    return "ratable"


def rate(ticket, resolution, score, comment, now, *, actor=None):
    """The customer's rating of one resolution, once (AlreadyRated on a reused link)."""
    if ticket["status"] not in (RESOLVED, CLOSED) or resolution != ticket.get("resolutions"):
        raise NotRatable("This rating link is for a resolution the ticket no longer has "
                         "(it was reopened); wait for the next one.")
    if resolution in ticket.get("rated", []):
        raise AlreadyRated("This resolution was rated already; a link rates once.")
    return Change(set={"rated": [*ticket.get("rated", []), resolution],
                       "last_rating": {"score": score, "comment": comment, "at": now,
                                       "resolution": resolution},
                       "updated_at": now},
                  events=[("ticket.rated", {**_common(ticket),
                                            "agent_id": ticket.get("assignee"),
                                            "score": score, "comment": comment,
                                            "resolution": resolution, "rated_at": now})],
                  actor=actor)
