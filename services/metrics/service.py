"""Metrics service: nameko entrypoints only; rules live in the domain, queries in the store.

One batch handler (one queue) per producer, bound to the event types the KPIs read: each
batch is applied with one atomic, event-id-guarded write per entity it touches (see
store.apply_batch), each projection going to the live KPIs as soon as it is written; the
kit acks the batch after that (kit.batches).
"""
from kit.batches import batch_event_handler
from kit.fields import utcnow
from kit.http import http, query_args
from kit.mongo import Store
from kit.ops import Operational
from metrics import timetravel
from metrics.live import LiveKpis
from metrics.permissions import PERMISSIONS
from metrics.rebuild import Rebuilds
from metrics.schemas import (
    BacktestOut,
    BacktestQuery,
    ForecastOut,
    ForecastQuery,
    FunnelOut,
    FunnelQuery,
    RebuildOut,
)
from metrics.store import MetricsStore
from metrics.streamstats import StreamStats


class MetricsService(Operational):
    name = "metrics"
    permissions = PERMISSIONS

    store = Store(MetricsStore)
    kpis = LiveKpis()
    rebuilds = Rebuilds()
    stream_stats = StreamStats()

    def _apply(self, events):
        self.store.apply_batch(events, self.kpis.absorb, self.kpis.writer)

    @http("GET", "/api/v1/funnel", query=FunnelQuery, response=FunnelOut, tags=["funnel"],
          summary="Cohort funnel: leads created in [from, to) and how far they got")
    def funnel(self, request):
        args = query_args(request, FunnelQuery())
        result = self.kpis.funnel(args["from_"], args["to"], args["pipeline"], args["as_of"])
        return FunnelOut().dump({**result, "from_": args["from_"], "to": args["to"],
                                 "pipeline": args["pipeline"], "as_of": args["as_of"]})

    @http("GET", "/api/v1/forecast", query=ForecastQuery, response=ForecastOut,
          tags=["forecast"], summary="Weighted forecast of the deals open at a moment, by "
                                     "expected close month, owner and currency")
    def forecast(self, request):
        at = query_args(request, ForecastQuery())["as_of"] or utcnow()
        result = timetravel.forecast(self.store.all_projections("deals"), at, self.kpis.rules)
        return ForecastOut().dump({**result, "as_of": at})

    @http("GET", "/api/v1/forecast/backtest", query=BacktestQuery, response=BacktestOut,
          tags=["forecast"], summary="The weighted forecast as of a moment next to what was "
                                     "won afterwards, per month, owner and currency")
    def forecast_backtest(self, request):
        args = query_args(request, BacktestQuery())
        result = timetravel.backtest(self.store.all_projections("deals"), args["as_of"],
                                     args["until"], self.kpis.rules)
        return BacktestOut().dump({**result, **args})

    @http("POST", "/api/v1/admin/rebuild", response=RebuildOut, status=202, tags=["admin"],
          summary="Rebuild the projections from the event streams into a fresh database "
                  "and switch over (one at a time; a running one is reported, not doubled)")
    def start_rebuild(self, request):
        _, status = self.rebuilds.begin()
        return RebuildOut().dump(status)

    @http("GET", "/api/v1/admin/rebuild", response=RebuildOut, tags=["admin"],
          summary="The active projection database and the last rebuild")
    def rebuild_status(self, request):
        return RebuildOut().dump(self.rebuilds.status())

    # --- events, one queue per producer ------------------------------------------------------

    @batch_event_handler("leads", (
        "lead.created", "lead.assigned", "lead.contacted", "lead.qualified",
        "lead.disqualified", "lead.converted", "lead.followup_due", "lead.response_overdue",
        "lead.updated", "lead.recycled"))
    def apply_leads_events(self, events):
        self._apply(events)

    @batch_event_handler("deals", (
        "deal.created", "deal.stage_changed", "deal.updated", "deal.won", "deal.lost",
        "deal.stalled", "deal.activity_logged", "deal.task_due"))
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
