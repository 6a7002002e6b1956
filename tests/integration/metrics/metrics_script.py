"""A scripted sales history as catalog events, and every KPI it must produce.

Seven leads, four deals, two quotes, a contract and two tickets, built with kit.events.new_event so
every event is valid against the catalog. Lead events carry the lead's status as the
leads service emits them (an answer to a new or disqualified lead leaves its status).
`deliveries()` gives the order the test publishes in: shuffled across entities, later
events of an entity before earlier ones, and some events twice. EXPECTED holds the exact
exposition values, worked out by hand.
"""
import datetime as dt
import random
from decimal import Decimal

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from kit.catalog import EVENT_TYPES, PRODUCER
from kit.events import new_event

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)
S = dt.timedelta(seconds=1)
PIPELINE = "default"  # the funnel pipeline (KPIS.funnel.pipeline_id)
CUSTOM = "pipe-custom"


class History:
    def __init__(self):
        self.events = []
        self._seq = {}

    def add(self, etype, subject, data, at):
        seq = self._seq[subject] = self._seq.get(subject, 0) + 1
        self.events.append(new_event(etype, subject, data, seq, time=at))

    # leads
    def lead(self, lid, source, created, contacted_after=None, qualified_after=None,
             converted_after=None, disqualified_after=None, answered_after=None):
        """`contacted_after`: moved to contacted (the first response); `answered_after`:
        an activity answered it without a status change (after any disqualification)."""
        self.add("lead.created", lid, {"lead_id": lid, "name": lid, "source": source,
                                       "score": 50, "grade": "B", "created_at": created,
                                       "status": "new"}, created)
        self.add("lead.assigned", lid, {"lead_id": lid, "owner_id": "rep-1", "rule": "rr",
                                        "status": "new"}, created)
        status = "new"

        def contacted(after, status):
            at = created + after
            self.add("lead.contacted", lid, {
                "lead_id": lid, "source": source, "created_at": created, "contacted_at": at,
                "first_response_seconds": after.total_seconds(), "status": status}, at)

        if contacted_after is not None:
            status = "contacted"
            contacted(contacted_after, status)
        if qualified_after is not None:
            status = "qualified"
            self.add("lead.qualified", lid, {"lead_id": lid, "source": source, "score": 80,
                                             "grade": "A", "status": status},
                     created + qualified_after)
        if disqualified_after is not None:
            status = "disqualified"
            self.add("lead.disqualified", lid, {"lead_id": lid, "source": source,
                                                "reason": "no budget", "status": status},
                     created + disqualified_after)
        if answered_after is not None:
            contacted(answered_after, status)
        if converted_after is not None:
            at = created + converted_after
            self.add("lead.converted", lid, {
                "lead_id": lid, "name": lid, "source": source, "created_at": created,
                "converted_at": at, "status": "converted"}, at)

    # deals
    def deal(self, did, created, stage, amount, currency, probability, lead_id=None,
             expected_close=None, pipeline=PIPELINE):
        self.add("deal.created", did, {
            "deal_id": did, "pipeline_id": pipeline, "stage": stage, "name": did,
            "amount": Decimal(amount), "currency": currency, "probability": probability,
            "expected_close": expected_close, "lead_id": lead_id,
            "origin": "lead" if lead_id else "direct", "created_at": created}, created)
        return {"did": did, "stage": stage, "amount": Decimal(amount), "currency": currency,
                "created": created, "lead_id": lead_id, "expected_close": expected_close,
                "pipeline": pipeline}

    def move(self, deal, to, at, probability):
        self.add("deal.stage_changed", deal["did"], {
            "deal_id": deal["did"], "pipeline_id": deal["pipeline"], "from_stage": deal["stage"],
            "to_stage": to,            "probability": probability, "amount": deal["amount"],
            "currency": deal["currency"], "expected_close": deal["expected_close"],
            "changed_at": at}, at)
        deal["stage"] = to

    def won(self, deal, at):
        self.add("deal.won", deal["did"], {
            "deal_id": deal["did"], "pipeline_id": deal["pipeline"], "from_stage": deal["stage"],
            "amount": deal["amount"], "currency": deal["currency"],
            "lead_id": deal["lead_id"], "created_at": deal["created"], "won_at": at}, at)

    def lost(self, deal, at, reason):
        self.add("deal.lost", deal["did"], {
            "deal_id": deal["did"], "pipeline_id": deal["pipeline"], "from_stage": deal["stage"],
            "reason": reason, "amount": deal["amount"], "currency": deal["currency"],
            "created_at": deal["created"], "lost_at": at}, at)


def build():
    h = History()
    # L1: the whole way to a won deal
    h.lead("L1", "web_form", T0, contacted_after=600 * S, qualified_after=H,
           converted_after=2 * H)
    d1 = h.deal("D1", T0 + 2 * H, "discovery", "1000.00", "EUR", 10, lead_id="L1")
    for i, stage in enumerate(("needs_confirmed", "proposal", "quote_negotiation",
                               "contract_payment"), start=1):
        h.move(d1, stage, T0 + i * D, 20 * i)
    h.won(d1, T0 + 5 * D)
    # L2: converted; its deal skips needs_confirmed and stays open at proposal
    h.lead("L2", "referral", T0 + H, contacted_after=H, qualified_after=2 * H,
           converted_after=3 * H)
    d2 = h.deal("D2", T0 + 4 * H, "discovery", "5000.00", "EUR", 20, lead_id="L2",
                expected_close=dt.date(2024, 6, 15))
    h.move(d2, "proposal", T0 + D + 4 * H, 50)
    # L3: contacted, then disqualified; L4: never contacted
    h.lead("L3", "web_form", T0 + 2 * H, contacted_after=120 * S, disqualified_after=H)
    h.lead("L4", "Google Ads", T0 + 3 * H)
    # L5: before the cohort window
    h.lead("L5", "api", T0 - 10 * D, contacted_after=30 * S, qualified_after=H)
    # L6, L7 (before the cohort window too): L6 answered by a call but still new; L7
    # disqualified while new, then answered: it stays disqualified
    h.lead("L6", "api", T0 - 5 * D, answered_after=900 * S)
    h.lead("L7", "api", T0 - 5 * D, disqualified_after=H, answered_after=2 * H)
    # D3: a direct deal (no lead), lost on price after two days, reopened, lost again
    d3 = h.deal("D3", T0 + D, "discovery", "2000.00", "USD", 10)
    h.lost(d3, T0 + 3 * D, "Price")
    d3["stage"] = "lost"
    h.move(d3, "discovery", T0 + 4 * D, 10)
    h.lost(d3, T0 + 5 * D, "timing")
    # D4: a direct deal of a custom pipeline, won straight from its stage "demo"
    d4 = h.deal("D4", T0 + D, "demo", "700.00", "EUR", 30, pipeline=CUSTOM)
    h.won(d4, T0 + 2 * D)
    # quotes on D1: Q1 approved after 30 minutes and accepted; Q2 rejected
    base = {"deal_id": "D1", "version": 1}
    h.add("quote.created", "Q1", {**base, "quote_id": "Q1", "number": "Q-1",
                                  "total": Decimal("1000.00"), "currency": "EUR"}, T0 + 3 * D)
    sub = T0 + 3 * D + H
    h.add("quote.submitted", "Q1", {**base, "quote_id": "Q1", "total": Decimal("1000.00"),
                                    "currency": "EUR", "requires_approval": True,
                                    "submitted_at": sub, "discount_percent": Decimal("12.50")},
          sub)
    h.add("quote.approved", "Q1", {**base, "quote_id": "Q1", "submitted_at": sub,
                                   "approved_at": sub + 1800 * S}, sub + 1800 * S)
    h.add("quote.sent", "Q1", {**base, "quote_id": "Q1", "total": Decimal("1000.00"),
                               "currency": "EUR", "valid_until": T0 + 30 * D}, sub + 2 * H)
    h.add("quote.accepted", "Q1", {**base, "quote_id": "Q1", "total": Decimal("1000.00"),
                                   "currency": "EUR", "accepted_at": T0 + 4 * D}, T0 + 4 * D)
    h.add("quote.created", "Q2", {**base, "quote_id": "Q2", "number": "Q-2",
                                  "total": Decimal("900.00"), "currency": "EUR"}, T0 + 3 * D)
    h.add("quote.submitted", "Q2", {**base, "quote_id": "Q2", "total": Decimal("900.00"),
                                    "currency": "EUR", "requires_approval": True,
                                    "submitted_at": sub, "discount_percent": Decimal("30.00")},
          sub)
    h.add("quote.rejected", "Q2", {**base, "quote_id": "Q2", "reason": "discount",
                                   "submitted_at": sub, "rejected_at": sub + H}, sub + H)
    # Q1's contract C1: signed, paid 300.00 then 700.00 (fully paid)
    ref = {"contract_id": "C1", "quote_id": "Q1", "deal_id": "D1",
           "amount": Decimal("1000.00"), "currency": "EUR"}
    h.add("contract.created", "C1", {**ref, "number": "C-1", "created_at": T0 + 4 * D},
          T0 + 4 * D)
    h.add("contract.signed", "C1", {**ref, "signed_at": T0 + 4 * D + H,
                                    "pdf_sha256": "0" * 64}, T0 + 4 * D + H)
    for n, (paid, total) in enumerate((("300.00", "300.00"), ("700.00", "1000.00")), 1):
        h.add("payment.received", "C1", {**ref, "payment_id": f"P{n}", "paid": Decimal(paid),
                                         "paid_total": Decimal(total), "method": "bank",
                                         "received_at": T0 + (4 + n) * D, "first": n == 1},
              T0 + (4 + n) * D)
    h.add("contract.fully_paid", "C1", {**ref, "paid_at": T0 + 6 * D}, T0 + 6 * D)
    # tickets: K1 high, responded late, resolved in 2 h, rated 5; K2 normal, resolved late
    opened = T0 + 6 * D
    h.add("ticket.opened", "K1", {"ticket_id": "K1", "priority": "high", "channel": "email",
                                  "subject": "x", "opened_at": opened}, opened)
    h.add("ticket.sla_breached", "K1", {"ticket_id": "K1", "priority": "high",
                                        "kind": "first_response", "due_at": opened + H,
                                        "breached_at": opened + H}, opened + H)
    h.add("ticket.first_responded", "K1", {
        "ticket_id": "K1", "priority": "high", "opened_at": opened,
        "responded_at": opened + 90 * 60 * S, "first_response_seconds": 5400.0,
        "sla_met": False},
        opened + 90 * 60 * S)
    h.add("ticket.resolved", "K1", {"ticket_id": "K1", "priority": "high",
                                    "opened_at": opened, "resolved_at": opened + 2 * H,
                                    "resolution_seconds": 7200.0, "sla_met": True},
          opened + 2 * H)
    h.add("ticket.rated", "K1", {"ticket_id": "K1", "priority": "high", "score": 5},
          opened + 3 * H)
    h.add("ticket.opened", "K2", {"ticket_id": "K2", "priority": "normal", "channel": "web",
                                  "subject": "y", "opened_at": opened}, opened)
    h.add("ticket.sla_breached", "K2", {"ticket_id": "K2", "priority": "normal",
                                        "kind": "resolution", "due_at": opened + D,
                                        "breached_at": opened + D}, opened + D)
    h.add("ticket.resolved", "K2", {"ticket_id": "K2", "priority": "normal",
                                    "opened_at": opened, "resolved_at": opened + 90000 * S,
                                    "resolution_seconds": 90000.0, "sla_met": False},
          opened + 90000 * S)
    h.add("ticket.rated", "K2", {"ticket_id": "K2", "priority": "normal", "score": 3},
          opened + 26 * H)
    return h.events


def deliveries(events, seed=7):
    """Every event once, in a scrambled order (each entity's events reversed), plus a
    duplicate of every fourth event; returns (bodies, duplicates by type)."""
    rng = random.Random(seed)
    by_subject = {}
    for event in events:
        by_subject.setdefault(event["subject"], []).append(event)
    queues = [list(reversed(evts)) for evts in by_subject.values()]
    order = []
    while queues:
        q = rng.choice(queues)
        order.append(q.pop(0))
        if not q:
            queues.remove(q)
    dups = {}
    for event in events[::4]:
        order.insert(rng.randrange(len(order) + 1), event)
        dups[event["type"]] = dups.get(event["type"], 0) + 1
    return order, dups


def routed(event):
    return f"{PRODUCER[event['type']]}.events", event["type"]


def counts_by_type(events):
    out = {}
    for event in events:
        out[event["type"]] = out.get(event["type"], 0) + 1
    return out


def _hist(bounds, observations):
    """{le: cumulative count} plus count and sum for a list of observations in seconds."""
    out = {}
    for bound in bounds:
        out[bound] = sum(1 for o in observations if o <= bound)
    out["+Inf"] = len(observations)
    return out, len(observations), float(sum(observations))


LEAD_BUCKETS = [60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800]
CYCLE_BUCKETS = [86400, 259200, 604800, 1209600, 2592000, 5184000, 7776000, 15552000,
                 31536000]
APPROVAL_BUCKETS = [300, 900, 1800, 3600, 14400, 28800, 86400, 172800, 604800]
RESOLUTION_BUCKETS = [3600, 7200, 14400, 28800, 86400, 172800, 259200, 604800, 1209600]
FIRST_RESPONSE_BUCKETS = [300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800]

# Non-zero series; every other series of these families must be exactly 0.
EXPECTED = {
    ("dealflow_leads_created_total", (("source", "web_form"),)): 2,   # L1, L3
    ("dealflow_leads_created_total", (("source", "referral"),)): 1,   # L2
    ("dealflow_leads_created_total", (("source", "other"),)): 1,      # L4 "Google Ads"
    ("dealflow_leads_created_total", (("source", "api"),)): 3,        # L5, L6, L7
    # leads: L1..L7 created; L1,L2,L3,L5 contacted (L6, L7 were only answered);
    # L1,L2,L5 qualified; L1,L2 converted
    # deals: D1,D2,D3 discovery; D1 needs_confirmed (D2 skipped it); D1,D2 proposal;
    # D1 quote_negotiation, contract_payment; D1, D4 won; D4 demo (custom pipeline)
    **{("dealflow_funnel_entered_total", (("stage", s),)): n for s, n in {
        "lead_created": 7, "lead_contacted": 4, "lead_qualified": 3, "lead_converted": 2,
        "discovery": 3, "needs_confirmed": 1, "proposal": 2, "quote_negotiation": 1,
        "contract_payment": 1, "won": 2, "demo": 1}.items()},
    # reached (or passed): leads by status; deals of the funnel pipeline by origin
    **{("dealflow_funnel_reached_total", (("origin", "lead"), ("stage", s))): n
       for s, n in {"lead_created": 7, "lead_contacted": 4, "lead_qualified": 3,
                    "lead_converted": 2, "discovery": 2, "needs_confirmed": 2,
                    "proposal": 2, "quote_negotiation": 1, "contract_payment": 1,
                    "won": 1}.items()},
    ("dealflow_funnel_reached_total", (("origin", "direct"), ("stage", "discovery"))): 1,
    # now: L4, L6 created; L5 qualified; L1,L2 converted; L3, L7 out; D2 proposal;
    # D1, D4 won; D3 out
    **{("dealflow_funnel_current", (("stage", s),)): n for s, n in {
        "lead_created": 2, "lead_qualified": 1, "lead_converted": 2, "proposal": 1,
        "won": 2}.items()},
    # final outcomes, each deal once: D1, D4 won; D3 lost (twice, counted once)
    ("dealflow_deals_closed", (("outcome", "won"),)): 2,
    ("dealflow_deals_closed", (("outcome", "lost"),)): 1,
    ("dealflow_deals_lost_total", (("reason", "price"),)): 1,
    ("dealflow_deals_lost_total", (("reason", "timing"),)): 1,
    ("dealflow_pipeline_amount", (("currency", "EUR"), ("stage", "proposal"))): 5000,
    ("dealflow_forecast_weighted_amount", (("currency", "EUR"), ("month", "2024-06"))): 2500,
    **{("dealflow_quotes_total", (("status", s),)): n for s, n in {
        "created": 2, "submitted": 2, "approved": 1, "rejected": 1, "sent": 1,
        "accepted": 1}.items()},
    ("dealflow_quotes_current", (("status", "accepted"),)): 1,
    ("dealflow_quotes_current", (("status", "rejected"),)): 1,
    ("dealflow_quote_discount_percent_sum", ()): 42.5,
    ("dealflow_quote_discount_quotes", ()): 2,
    ("dealflow_contracts_current", (("status", "fully_paid"),)): 1,
    ("dealflow_contracted_amount", (("currency", "EUR"),)): 1000,
    ("dealflow_collected_amount", (("currency", "EUR"),)): 1000,
    ("dealflow_tickets_opened_total", (("priority", "high"),)): 1,
    ("dealflow_tickets_opened_total", (("priority", "normal"),)): 1,
    ("dealflow_ticket_sla_breaches_total", (("kind", "first_response"),
                                            ("priority", "high"))): 1,
    ("dealflow_ticket_sla_breaches_total", (("kind", "resolution"),
                                            ("priority", "normal"))): 1,
    # SLA attainment: K1 answered late, resolved in time; K2 resolved late
    ("dealflow_ticket_sla_outcomes_total", (("kind", "first_response"),
                                            ("outcome", "missed"))): 1,
    ("dealflow_ticket_sla_outcomes_total", (("kind", "resolution"), ("outcome", "met"))): 1,
    ("dealflow_ticket_sla_outcomes_total", (("kind", "resolution"), ("outcome", "missed"))): 1,
    ("dealflow_csat_ratings_total", (("score", "5"),)): 1,
    ("dealflow_csat_ratings_total", (("score", "3"),)): 1,
}

HISTOGRAMS = {
    # first responses: L1 600, L2 3600, L3 120, L5 30, L6 900, L7 7200
    ("dealflow_lead_first_response_seconds", ()): _hist(LEAD_BUCKETS,
                                                        [600, 3600, 120, 30, 900, 7200]),
    # each close: D1 won, D4 won; D3 lost twice
    ("dealflow_deal_cycle_seconds", (("outcome", "won"),)): _hist(CYCLE_BUCKETS,
                                                                  [5 * 86400 - 7200, 86400]),
    ("dealflow_deal_cycle_seconds", (("outcome", "lost"),)): _hist(CYCLE_BUCKETS,
                                                                   [2 * 86400, 4 * 86400]),
    ("dealflow_quote_approval_seconds", ()): _hist(APPROVAL_BUCKETS, [1800]),
    ("dealflow_ticket_resolution_seconds", (("priority", "high"),)): _hist(
        RESOLUTION_BUCKETS, [7200]),
    ("dealflow_ticket_resolution_seconds", (("priority", "normal"),)): _hist(
        RESOLUTION_BUCKETS, [90000]),
    ("dealflow_ticket_first_response_seconds", (("priority", "high"),)): _hist(
        FIRST_RESPONSE_BUCKETS, [5400]),
}

# Prometheus funnel conversion (cumulative reached totals), stage to next stage: lead
# stages from leads, lead_converted -> discovery from deals of origin lead only, deal
# stages from deals of both origins.
STAGES = ["lead_created", "lead_contacted", "lead_qualified", "lead_converted", "discovery",
          "needs_confirmed", "proposal", "quote_negotiation", "contract_payment", "won"]


ENTERED = {s: EXPECTED[("dealflow_funnel_entered_total", (("stage", s),))]
           for s in [*STAGES, "demo"]}


def _reached(stage, origins=("lead", "direct")):
    return sum(EXPECTED.get(("dealflow_funnel_reached_total", (("origin", o), ("stage", stage))),
                            0) for o in origins)


REACHED = {s: _reached(s) for s in STAGES}
CONVERSION = {(a, b): REACHED[b] / REACHED[a] for a, b in zip(STAGES, STAGES[1:], strict=False)}
CONVERSION[("lead_converted", "discovery")] = _reached("discovery", ("lead",)) / REACHED[
    "lead_converted"]
OVERALL_CONVERSION = _reached("won", ("lead",)) / REACHED["lead_created"]
WIN_RATE = 2 / 3  # final outcomes: D1, D4 won; D3 lost (twice, once reopened)

# GET /api/v1/funnel?from=T0&to=T0+1d: the cohort is L1..L4 (L5 is older).
COHORT_REACHED = {"lead_created": 4, "lead_contacted": 3, "lead_qualified": 2,
                  "lead_converted": 2, "discovery": 2, "needs_confirmed": 2, "proposal": 2,
                  "quote_negotiation": 1, "contract_payment": 1, "won": 1}
# (median seconds, samples): only leads with a timestamp for both stages count
COHORT_MEDIANS = {
    ("lead_created", "lead_contacted"): (600, 3),                   # 120, 600, 3600
    ("lead_contacted", "lead_qualified"): ((3000 + 3600) / 2, 2),   # L1 3000, L2 3600
    ("lead_qualified", "lead_converted"): (3600, 2),                # L1 3600, L2 3600
    ("lead_converted", "discovery"): (0, 2),                        # deals opened at once
    ("discovery", "needs_confirmed"): (86400 - 7200, 1),            # D1 only (D2 skipped)
    ("needs_confirmed", "proposal"): (86400, 1),
    ("proposal", "quote_negotiation"): (86400, 1),
    ("quote_negotiation", "contract_payment"): (86400, 1),
    ("contract_payment", "won"): (86400, 1),
}


# --- checking an exposition ------------------------------------------------------------------

KPI_PREFIXES = ("dealflow_leads_", "dealflow_funnel_", "dealflow_deal", "dealflow_pipeline_",
                "dealflow_forecast_", "dealflow_quote", "dealflow_ticket", "dealflow_csat_",
                "dealflow_events_", "dealflow_lead_", "dealflow_contract",
                "dealflow_collected_")


def samples(text):
    """{(sample name, sorted label pairs): value} of the KPI series in an exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith(KPI_PREFIXES):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def mismatches(got, events, duplicates):
    """Every difference between an exposition's KPI samples and the expected values."""
    want = dict(EXPECTED)
    applied = counts_by_type(events)
    for etype in EVENT_TYPES:
        want[("dealflow_events_applied_total", (("type", etype),))] = applied.get(etype, 0)
        want[("dealflow_events_duplicate_total", (("type", etype),))] = duplicates.get(etype, 0)
    for (name, labels), (buckets, count, total) in HISTOGRAMS.items():
        for le, n in buckets.items():
            le_text = le if le == "+Inf" else floatToGoString(le)
            want[(name + "_bucket", tuple(sorted(labels + (("le", le_text),))))] = n
        want[(name + "_count", labels)] = count
        want[(name + "_sum", labels)] = total
    problems = []
    for k, v in want.items():
        if got.get(k) != v:
            problems.append(f"{k}: got {got.get(k)}, want {v}")
    for k, v in got.items():
        if k not in want and v != 0:
            problems.append(f"{k}: got {v}, want 0")
    return problems
