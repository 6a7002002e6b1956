"""Metrics service: nameko entrypoints only; rules live in the domain, queries in the store.

Every catalog event type has its own handler (its own queue): each applies the event to
its entity's projection in one atomic write, then hands the projection to the live KPIs.
"""
from kit.consumer import event_handler
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

    def _apply(self, event):
        kind, doc, _ = self.store.apply(event)
        self.kpis.absorb(kind, doc)

    @http("GET", "/api/v1/funnel", query=FunnelQuery, response=FunnelOut, tags=["funnel"],
          summary="Cohort funnel: leads created in [from, to) and how far they got")
    def funnel(self, request):
        args = query_args(request, FunnelQuery())
        result = self.kpis.funnel(args["from_"], args["to"], args["pipeline"])
        return FunnelOut().dump({**result, "from_": args["from_"], "to": args["to"],
                                 "pipeline": args["pipeline"]})

    # --- leads ---------------------------------------------------------------------------

    @event_handler("leads", "lead.created")
    def handle_leads_lead_created(self, event):
        self._apply(event)

    @event_handler("leads", "lead.assigned")
    def handle_leads_lead_assigned(self, event):
        self._apply(event)

    @event_handler("leads", "lead.contacted")
    def handle_leads_lead_contacted(self, event):
        self._apply(event)

    @event_handler("leads", "lead.qualified")
    def handle_leads_lead_qualified(self, event):
        self._apply(event)

    @event_handler("leads", "lead.disqualified")
    def handle_leads_lead_disqualified(self, event):
        self._apply(event)

    @event_handler("leads", "lead.converted")
    def handle_leads_lead_converted(self, event):
        self._apply(event)

    @event_handler("leads", "lead.followup_due")
    def handle_leads_lead_followup_due(self, event):
        self._apply(event)

    @event_handler("leads", "lead.response_overdue")
    def handle_leads_lead_response_overdue(self, event):
        self._apply(event)

    @event_handler("leads", "lead.updated")
    def handle_leads_lead_updated(self, event):
        self._apply(event)

    @event_handler("leads", "lead.recycled")
    def handle_leads_lead_recycled(self, event):
        self._apply(event)

    # --- deals ---------------------------------------------------------------------------

    @event_handler("deals", "deal.created")
    def handle_deals_deal_created(self, event):
        self._apply(event)

    @event_handler("deals", "deal.stage_changed")
    def handle_deals_deal_stage_changed(self, event):
        self._apply(event)

    @event_handler("deals", "deal.updated")
    def handle_deals_deal_updated(self, event):
        self._apply(event)

    @event_handler("deals", "deal.won")
    def handle_deals_deal_won(self, event):
        self._apply(event)

    @event_handler("deals", "deal.lost")
    def handle_deals_deal_lost(self, event):
        self._apply(event)

    @event_handler("deals", "deal.stalled")
    def handle_deals_deal_stalled(self, event):
        self._apply(event)

    @event_handler("deals", "deal.activity_logged")
    def handle_deals_deal_activity_logged(self, event):
        self._apply(event)

    @event_handler("deals", "deal.task_due")
    def handle_deals_deal_task_due(self, event):
        self._apply(event)

    # --- quotes --------------------------------------------------------------------------

    @event_handler("quotes", "quote.created")
    def handle_quotes_quote_created(self, event):
        self._apply(event)

    @event_handler("quotes", "quote.submitted")
    def handle_quotes_quote_submitted(self, event):
        self._apply(event)

    @event_handler("quotes", "quote.approved")
    def handle_quotes_quote_approved(self, event):
        self._apply(event)

    @event_handler("quotes", "quote.rejected")
    def handle_quotes_quote_rejected(self, event):
        self._apply(event)

    @event_handler("quotes", "quote.sent")
    def handle_quotes_quote_sent(self, event):
        self._apply(event)

    @event_handler("quotes", "quote.accepted")
    def handle_quotes_quote_accepted(self, event):
        self._apply(event)

    @event_handler("quotes", "quote.declined")
    def handle_quotes_quote_declined(self, event):
        self._apply(event)

    @event_handler("quotes", "quote.expired")
    def handle_quotes_quote_expired(self, event):
        self._apply(event)

    @event_handler("quotes", "quote.voided")
    def handle_quotes_quote_voided(self, event):
        self._apply(event)

    @event_handler("quotes", "contract.created")
    def handle_quotes_contract_created(self, event):
        self._apply(event)

    @event_handler("quotes", "contract.signed")
    def handle_quotes_contract_signed(self, event):
        self._apply(event)

    @event_handler("quotes", "contract.voided")
    def handle_quotes_contract_voided(self, event):
        self._apply(event)

    @event_handler("quotes", "payment.received")
    def handle_quotes_payment_received(self, event):
        self._apply(event)

    @event_handler("quotes", "contract.fully_paid")
    def handle_quotes_contract_fully_paid(self, event):
        self._apply(event)

    # --- support -------------------------------------------------------------------------

    @event_handler("support", "ticket.opened")
    def handle_support_ticket_opened(self, event):
        self._apply(event)

    @event_handler("support", "ticket.assigned")
    def handle_support_ticket_assigned(self, event):
        self._apply(event)

    @event_handler("support", "ticket.first_responded")
    def handle_support_ticket_first_responded(self, event):
        self._apply(event)

    @event_handler("support", "ticket.resolved")
    def handle_support_ticket_resolved(self, event):
        self._apply(event)

    @event_handler("support", "ticket.reopened")
    def handle_support_ticket_reopened(self, event):
        self._apply(event)

    @event_handler("support", "ticket.sla_breached")
    def handle_support_ticket_sla_breached(self, event):
        self._apply(event)

    @event_handler("support", "ticket.rated")
    def handle_support_ticket_rated(self, event):
        self._apply(event)

    @event_handler("support", "ticket.status_changed")
    def handle_support_ticket_status_changed(self, event):
        self._apply(event)

    @event_handler("support", "ticket.sla_warning")
    def handle_support_ticket_sla_warning(self, event):
        self._apply(event)

    @event_handler("support", "delivery.opened")
    def handle_support_delivery_opened(self, event):
        self._apply(event)

    @event_handler("support", "delivery.step_completed")
    def handle_support_delivery_step_completed(self, event):
        self._apply(event)

    @event_handler("support", "delivery.accepted")
    def handle_support_delivery_accepted(self, event):
        self._apply(event)
