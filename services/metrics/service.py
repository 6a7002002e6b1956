"""Metrics service: nameko entrypoints only; rules live in the domain, queries in the store.

One batch handler (one queue) per producer, bound to the event types the KPIs read: each
batch is applied with one atomic, event-id-guarded write per entity it touches (see
store.apply_batch), then the projections written go to the live KPIs; the kit acks the
batch after that (kit.batches).
"""
from kit.batches import batch_event_handler
from kit.http import http, query_args
from kit.mongo import Store
from kit.ops import Operational
from metrics.live import LiveKpis
from metrics.permissions import PERMISSIONS
from metrics.schemas import FunnelOut, FunnelQuery
from metrics.store import MetricsStore


class MetricsService(Operational):
    name = "metrics"
    permissions = PERMISSIONS

    store = Store(MetricsStore)
    kpis = LiveKpis()

    def _apply(self, events):
        for kind, doc in self.store.apply_batch(events):
            self.kpis.absorb(kind, doc)

    @http("GET", "/api/v1/funnel", query=FunnelQuery, response=FunnelOut, tags=["funnel"],
          summary="Cohort funnel: leads created in [from, to) and how far they got")
    def funnel(self, request):
        args = query_args(request, FunnelQuery())
        result = self.kpis.funnel(args["from_"], args["to"], args["pipeline"])
        return FunnelOut().dump({**result, "from_": args["from_"], "to": args["to"],
                                 "pipeline": args["pipeline"]})

    # --- events, one queue per producer ------------------------------------------------------

    @batch_event_handler("leads", (
        "lead.created", "lead.assigned", "lead.contacted", "lead.qualified",
        "lead.disqualified", "lead.converted", "lead.followup_due", "lead.response_overdue",
        "lead.updated", "lead.recycled"))
    def apply_leads_events(self, events):
        self._apply(events)

    @batch_event_handler("deals", (
        "deal.created", "deal.stage_changed", "deal.updated", "deal.won", "deal.lost",
        "deal.stalled"))
    def apply_deals_events(self, events):
        self._apply(events)

    @batch_event_handler("quotes", (
        "quote.created", "quote.submitted", "quote.approved", "quote.rejected", "quote.sent",
        "quote.accepted", "quote.declined", "quote.expired", "quote.voided",
        "contract.created", "contract.signed", "contract.voided", "payment.received",
        "contract.fully_paid"))
    def apply_quotes_events(self, events):
        self._apply(events)

    @batch_event_handler("support", (
        "ticket.opened", "ticket.assigned", "ticket.first_responded", "ticket.resolved",
        "ticket.reopened", "ticket.sla_breached", "ticket.rated", "ticket.status_changed",
        "ticket.sla_warning", "delivery.opened", "delivery.step_completed",
        "delivery.accepted"))
    def apply_support_events(self, events):
        self._apply(events)
