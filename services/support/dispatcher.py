"""Auto-dispatch: puts the rules of support.dispatch and support.domain to work on the store.

No transaction spans the agent's load and the ticket, so the order makes each step safe:
1. claim: the agent's load document takes the ticket in one conditional update guarded by
   `load < capacity` (two tickets arriving at once cannot both pass the cap);
2. assign: the ticket's versioned write names the agent (and emits ticket.assigned);
3. if the ticket was taken meanwhile (or the write failed), the claim is released.
A crash between 1 and 2 leaves the ticket queued and the claim in place: the next
dispatch of that ticket finds the claim (`holder_of`) and completes it.

A pass offers each queued ticket on its own: one that fails is logged and skipped, so a
ticket the rules refuse (or a malformed stored one) never holds up the queue behind it.
"""
import logging

from pymongo.errors import PyMongoError

from kit.errors import Contention, NotFound, Unavailable
from support import dispatch
from support import domain as D

log = logging.getLogger(__name__)
SYSTEM = "system:support"


class Dispatcher:
    def __init__(self, store, now):
        self.store = store
        self.now = now

    def dispatch(self, ticket_id):
        """Give a queued ticket to an agent; returns the ticket after, or None when it
        stays queued (nobody able) or is no longer queued."""
        ticket = self.store.get_ticket(ticket_id)
        if ticket is None or not D.dispatchable(ticket):
            return None
        holder = self.store.holder_of(ticket_id)
        order = [holder] if holder else dispatch.candidates(
            self.store.agents(), ticket.get("category"), ticket.get("previous_assignee"))
        for agent_id in order:
            if not self.store.claim(agent_id, ticket_id):
                continue  # another ticket took the last place meanwhile: the next agent
            return self._assign(ticket_id, agent_id, "dispatch", SYSTEM)
        return None

    def _assign(self, ticket_id, agent_id, rule, actor):
        try:
            after, _ = self.store.change_ticket(ticket_id, lambda t: D.assign(
                t, agent_id, self.now(), rule=rule, actor=actor)
                if D.dispatchable(t) or rule == "manual" else None)
        except BaseException:
            self.store.release(agent_id, ticket_id)
            raise
        if after.get("assignee") != agent_id:
            self.store.release(agent_id, ticket_id)
        return after

    def assign(self, ticket_id, agent_id, actor):
        """A lead's manual (re)assignment: past the cap if need be, as leads decide that;
        None puts the ticket back in the queue."""
        ticket = self.store.get_ticket(ticket_id)
        if ticket is None:
            raise NotFound(f"No ticket {ticket_id}.")
        previous = ticket.get("assignee")
        if agent_id is None:
            after, _ = self.store.change_ticket(
                ticket_id, lambda t: D.requeue(t, self.now(), actor=actor))
        else:
            if self.store.get_agent(agent_id) is None:
                raise NotFound(f"No agent {agent_id} in the roster.")
            if ticket["status"] in D.ACTIVE:
                self.store.claim(agent_id, ticket_id, over_capacity=True)
            after = self._assign(ticket_id, agent_id, "manual", actor)
        if previous and previous != after.get("assignee"):
            self.release(previous, ticket_id)
        return after

    def release(self, agent_id, ticket_id):
        """The agent no longer holds the ticket: offer the place to the queue."""
        if self.store.release(agent_id, ticket_id):
            self.offer(limit=10)

    def offer(self, limit):
        """`drain` for a caller whose own write is done (a status move, a roster edit):
        that write stands whatever the pass meets, so a failure is logged, not raised; the
        timer's next pass offers the queue again."""
        try:
            return self.drain(limit)
        except Exception:
            log.exception("dispatching the queue failed; the next timed pass retries")
            return 0

    def drain(self, limit):
        """Offer queued tickets, oldest first, to the agents with room; returns how many
        found an agent. Once a ticket of a category found nobody, younger tickets of that
        category wait for the next pass: a place freed meanwhile (this pass read the queue
        before) goes to the oldest, not to whichever ticket this pass reaches next."""
        placed, blocked = 0, set()
        for row in self.store.queued(limit):
            category = row.get("category")
            if category in blocked:
                continue
            try:
                if self.dispatch(row["_id"]) is not None:
                    placed += 1
                else:
                    blocked.add(category)
            except Contention:
                log.info("ticket %s kept changing; it waits for the next pass", row["_id"])
                blocked.add(category)
            except (PyMongoError, Unavailable):
                raise  # the database, not this ticket: every other one would fail too
            except Exception:
                # this ticket only: its category stays open, or one bad ticket would
                # hold back every younger one of it
                log.exception("ticket %s could not be dispatched; skipped", row["_id"])
        return placed
