"""Funnel KPIs as pure functions of entity projections (no nameko, no pymongo).

An entity projection (one per lead, deal, quote, ticket) is the set of *facts* the metrics
service has applied for that entity: one fact per event, holding the event's id, type,
sequence, time and the few data fields the KPIs need. Every KPI is a function of the
facts alone, never of the order they arrived in, and agrees with the owning service:
- a lead's status is the `status` of its highest-sequence fact (every lead event carries
  the status after it); a deal's stage is the stage of its highest-sequence fact that
  carries one (a stage change after won/lost reopens the deal);
- "entered" stages are the stages an item really had (a lead's statuses, a deal's stages
  of any pipeline by their own keys); a skipped stage was not entered;
- "reached" stages are the funnel stages up to the furthest one entered (monotone along
  the funnel, so every conversion ratio of reached counts is at most 1): leads by status,
  and deals of the funnel pipeline (`funnel.pipeline_id`, whose stage order the config
  lists) by their origin: "lead" (opened or adopted by a lead's conversion, at most one
  per converted lead) or "direct";
- each won/lost fact is one close (cycle time, lost reason), so those counters only grow;
  a deal's final outcome (the win rate's input) is its current one, counted once;
- durations come from the timestamps the producer put in the data.

`contribution(kind, doc, rules)` says what one entity adds to the exposed series, as a flat
tuple (key, value, key, value, ...). An instance's KPIs are the sum of the contributions of
every projection it has read; replacing an entity's old contribution with its new one is
exact (integers and Decimals only: durations in microseconds, money as Decimal), so
replays, duplicates and re-reads change nothing.
"""
import datetime as dt
import re
import statistics
from bisect import bisect_left
from decimal import Decimal

from metrics import quotes_kpis

# event type prefix -> (projection collection, id field in the event data)
KINDS = {
    "lead": ("leads", "lead_id"),
    "deal": ("deals", "deal_id"),
    "quote": ("quotes", "quote_id"),
    "ticket": ("tickets", "ticket_id"),
    "delivery": ("deliveries", "delivery_id"),
    **quotes_kpis.KINDS,
}

# Only what the KPIs need is kept: no names, e-mails or comments in the metrics database.
KEEP = {
    "lead.created": ("source", "created_at", "status"),
    "lead.assigned": ("status",),
    "lead.contacted": ("source", "created_at", "contacted_at", "first_response_seconds",
                       "status"),
    "lead.qualified": ("source", "status", "qualified_at"),
    "lead.disqualified": ("source", "reason", "status"),
    "lead.converted": ("source", "created_at", "converted_at", "status"),
    "lead.followup_due": (),
    "lead.response_overdue": ("created_at", "status"),
    "lead.updated": ("status",),
    "lead.recycled": ("source", "from_status", "status"),
    # owner_id (a person's id, no name) and the won amount: the forecast back-test's
    "deal.created": ("pipeline_id", "stage", "amount", "currency", "probability",
                     "expected_close", "lead_id", "origin", "created_at", "owner_id"),
    "deal.stage_changed": ("pipeline_id", "from_stage", "to_stage", "amount", "currency",
                           "probability", "expected_close", "changed_at", "owner_id"),
    "deal.updated": ("pipeline_id", "stage", "amount", "currency", "probability",
                     "expected_close", "origin", "owner_id"),
    "deal.won": ("pipeline_id", "from_stage", "lead_id", "created_at", "won_at", "owner_id",
                 "amount", "currency"),
    "deal.lost": ("pipeline_id", "from_stage", "reason", "created_at", "lost_at", "owner_id"),
    "deal.stalled": ("pipeline_id", "stage"),
    "quote.created": ("deal_id",),
    "quote.submitted": ("deal_id", "submitted_at"),
    "quote.approved": ("deal_id", "submitted_at", "approved_at"),
    "quote.rejected": ("deal_id", "submitted_at", "rejected_at"),
    "quote.sent": ("deal_id",),
    "quote.accepted": ("deal_id", "accepted_at"),
    "quote.declined": ("deal_id",),
    "quote.expired": ("deal_id",),
    "ticket.opened": ("priority", "opened_at"),
    "ticket.assigned": ("priority",),
    "ticket.first_responded": ("priority", "first_response_seconds", "sla_met"),
    "ticket.resolved": ("priority", "resolution_seconds", "sla_met"),
    "ticket.reopened": ("priority",),
    "ticket.sla_breached": ("priority", "kind"),
    "ticket.rated": ("priority", "score"),
    **quotes_kpis.KEEP,
    "ticket.status_changed": ("priority", "to_status"),
    "ticket.sla_warning": ("priority", "kind"),
    "delivery.opened": ("won_at", "opened_at"),
    "delivery.step_completed": ("step", "overdue"),
    "delivery.accepted": ("won_at", "accepted_at"),
}

# Lead status -> index into the configured lead stages (disqualified is out of the funnel).
LEAD_STATUS_INDEX = {"new": 0, "contacted": 1, "qualified": 2, "converted": 3}
# Facts stored before lead events carried `status`: the status their type implies (a
# legacy lead.contacted is taken as the move to contacted, as it was counted then).
LEGACY_LEAD_STATUS = {"lead.created": "new", "lead.contacted": "contacted",
                      "lead.qualified": "qualified", "lead.disqualified": "disqualified",
                      "lead.converted": "converted"}
LEAD_ORIGIN = "lead"
DIRECT_ORIGIN = "direct"
ORIGINS = (LEAD_ORIGIN, DIRECT_ORIGIN)
LOST_STAGE = "lost"
# A deal's snapshot of amount/currency/probability/expected close comes from these.
DEAL_SNAPSHOTS = ("deal.created", "deal.stage_changed", "deal.updated")
QUOTE_STATUSES = ("created", "submitted", "approved", "rejected", "sent", "accepted",
                  "declined", "expired", "voided")
PRIORITIES = ("low", "normal", "high", "urgent")
SLA_KINDS = ("first_response", "resolution")
OUTCOMES = ("won", "lost")
OTHER = "other"
MICROS = 1_000_000
# the deals service's stage key rule (deals.pipelines.KEY)
_STAGE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class Rules:
    """The configurable vocabulary: funnel stages, label values and histogram buckets."""

    def __init__(self, *, lead_stages, deal_stages, won_stage, lead_sources, lost_reasons,
                 buckets, funnel_pipeline="default"):
        self.lead_stages = tuple(lead_stages)
        self.deal_stages = tuple(deal_stages)
        self.won_stage = won_stage
        self.funnel_pipeline = funnel_pipeline
        self.funnel = self.lead_stages + self.deal_stages + (won_stage,)
        self.deal_funnel = self.deal_stages + (won_stage,)
        self.lead_sources = tuple(lead_sources)
        self.lost_reasons = tuple(lost_reasons)
        # bucket bounds in seconds (for rendering) and in microseconds (for exact binning)
        self.buckets = {name: tuple(float(b) for b in bounds) for name, bounds in buckets.items()}
        self.bucket_micros = {name: tuple(round(b * MICROS) for b in bounds)
                              for name, bounds in self.buckets.items()}

    @classmethod
    def from_config(cls, cfg):
        return cls(lead_stages=cfg["funnel"]["lead_stages"],
                   deal_stages=cfg["funnel"]["deal_stages"],
                   won_stage=cfg["funnel"].get("won_stage", "won"),
                   funnel_pipeline=cfg["funnel"].get("pipeline_id", "default"),
                   lead_sources=cfg["labels"]["lead_sources"],
                   lost_reasons=cfg["labels"]["lost_reasons"],
                   buckets=cfg["buckets"])

    def source_label(self, source):
        return _bounded(source, self.lead_sources)

    def reason_label(self, reason):
        return _bounded(reason, self.lost_reasons)

    def deal_stage_label(self, stage):
        """A deal stage's own key: the deals service bounds the stages of a pipeline
        (pipelines.MAX_STAGES) and their keys (short identifiers), so the label values
        are bounded by pipelines x stages; anything else (no key) becomes "other"."""
        return stage if isinstance(stage, str) and _STAGE_KEY.match(stage) else OTHER


def _bounded(value, allowed):
    """Free text becomes one of a fixed set of label values (bounded cardinality)."""
    norm = str(value or "").strip().lower().replace("-", "_").replace(" ", "_")
    return norm if norm in allowed else OTHER


# --- events -> facts -------------------------------------------------------------------------


def type_key(etype):
    """`lead.created` -> `lead_created` (MongoDB keys may not contain dots)."""
    return etype.replace(".", "_")


def _storable(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def fact_from_event(event):
    """(collection, entity id, fact) for a loaded CloudEvent (data already deserialised)."""
    etype = event["type"]
    collection, id_field = KINDS[etype.split(".", 1)[0]]
    data = event["data"]
    fact = {"id": event["id"], "type": etype, "seq": int(event["sequence"]),
            "time": event["time"]}
    for field in KEEP[etype]:
        value = data.get(field)
        if value is not None:
            fact[field] = _storable(value)
    return collection, str(data[id_field]), fact


def _ordered(doc):
    return sorted(doc.get("facts") or (), key=lambda f: (f["seq"], f["id"]))


def _first(facts, etype):
    return next((f for f in facts if f["type"] == etype), None)


def _micros(delta):
    return (delta.days * 86400 + delta.seconds) * MICROS + delta.microseconds


def _seconds_micros(seconds):
    return round(float(seconds) * MICROS)


def _aware(value):
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


# --- per-entity summaries --------------------------------------------------------------------


def _lead_status(fact):
    if "status" in fact:
        return fact["status"]
    return LEGACY_LEAD_STATUS.get(fact["type"])


def lead_summary(doc, rules):
    """A lead's funnel state: the statuses it had (entered), the furthest (reached) and
    the one of its highest-sequence fact that carries a status (current; None when it is
    disqualified). Follow-up task facts carry the task's sequence and no status."""
    facts = _ordered(doc)
    statuses = [(f["seq"], status) for f in facts if (status := _lead_status(f))]
    entered = sorted({LEAD_STATUS_INDEX[s] for _, s in statuses if s in LEAD_STATUS_INDEX})
    reached = entered[-1] if entered else -1
    status = statuses[-1][1] if statuses else None
    current = (rules.lead_stages[LEAD_STATUS_INDEX[status]]
               if status in LEAD_STATUS_INDEX else None)
    created = _first(facts, "lead.created")
    contacted = _first(facts, "lead.contacted")
    qualified = _first(facts, "lead.qualified")
    converted = _first(facts, "lead.converted")
    created_at = next((_aware(f["created_at"]) for f in facts if f.get("created_at")), None)
    times = {
        rules.lead_stages[0]: created_at,
        rules.lead_stages[1]: _aware(contacted["contacted_at"]) if contacted else None,
        # when it was qualified, as the producer says (a historical import says the past);
        # events from before qualified_at existed have only their envelope time
        rules.lead_stages[2]: (_aware(qualified.get("qualified_at") or qualified["time"])
                               if qualified else None),
        rules.lead_stages[3]: _aware(converted["converted_at"]) if converted else None,
    }
    return {
        "entered": [rules.lead_stages[i] for i in entered],
        "reached": reached,
        "current": current,
        "source": created["source"] if created else None,
        "first_response": (_seconds_micros(contacted["first_response_seconds"])
                           if contacted else None),
        "created_at": created_at,
        "times": times,
    }


def deal_summary(doc, rules):
    """A deal's funnel state. The fact with the highest sequence that carries a stage says
    where it is now (a reopened deal — a stage change after won/lost — is open again);
    every won/lost fact is one close, so close counts only ever grow. Entered stages are
    those a fact shows the deal in (never the ones a move skipped)."""
    facts = _ordered(doc)
    index = {stage: i for i, stage in enumerate(rules.deal_funnel)}
    entered = set()
    current = None
    outcome = None
    snapshot = {}
    times = {}
    closes = []

    def enter(stage, at):
        if not stage or stage == LOST_STAGE:
            return
        entered.add(stage)
        if stage in index:
            at = _aware(at)
            if at is not None and (stage not in times or at < times[stage]):
                times[stage] = at

    for fact in facts:
        etype = fact["type"]
        if etype == "deal.created":
            enter(fact.get("stage"), fact.get("created_at"))
            current, outcome = fact.get("stage"), None
        elif etype == "deal.stage_changed":
            enter(fact.get("from_stage"), None)
            enter(fact.get("to_stage"), fact.get("changed_at"))
            current, outcome = fact.get("to_stage"), None
        elif etype in ("deal.updated", "deal.stalled"):
            enter(fact.get("stage"), None)
            if outcome is None:
                current = fact.get("stage")
        elif etype in ("deal.won", "deal.lost"):
            enter(fact.get("from_stage"), None)
            won = etype == "deal.won"
            end = fact.get("won_at") if won else fact.get("lost_at")
            if won:
                enter(rules.won_stage, end)
            outcome = "won" if won else "lost"
            current = rules.won_stage if won else None
            closes.append((outcome, _micros(_aware(end) - _aware(fact["created_at"])),
                           fact.get("reason")))
        if etype in DEAL_SNAPSHOTS:
            snapshot = fact
    pipeline_id = next((f["pipeline_id"] for f in facts if f.get("pipeline_id")), None)
    lead_id = next((f["lead_id"] for f in facts if f.get("lead_id")), None)
    origins = {f["origin"] for f in facts if f.get("origin")}
    if not origins and lead_id:  # facts from before events carried the origin
        origins = {LEAD_ORIGIN}
    return {
        "entered": sorted(entered),
        # furthest funnel stage entered (funnel-pipeline order), -1 for none
        "reached": max((index[s] for s in entered if s in index), default=-1),
        "funnel": pipeline_id == rules.funnel_pipeline,
        "origin": LEAD_ORIGIN if LEAD_ORIGIN in origins else DIRECT_ORIGIN,
        "current": current,
        "outcome": outcome,
        "closes": closes,
        "amount": Decimal(snapshot["amount"]) if snapshot.get("amount") is not None else None,
        "currency": snapshot.get("currency"),
        "probability": snapshot.get("probability"),
        "expected_close": snapshot.get("expected_close"),
        "lead_id": lead_id,
        "pipeline_id": pipeline_id,
        "times": times,
    }


# --- contributions ---------------------------------------------------------------------------

_KEYS = {}


def key(name, *labels):
    """Interned series key: the same tuple object is shared by every entity's contribution."""
    k = (name, labels)
    return _KEYS.setdefault(k, k)


def _observe(out, rules, name, labels, micros):
    bounds = rules.bucket_micros[name]
    out += (key(name, *labels, bisect_left(bounds, micros)), 1,
            key(name + ":sum", *labels), micros)
    return out


def _common(doc):
    out = ()
    for fact in doc.get("facts") or ():
        out += (key("events_applied", fact["type"]), 1)
    for tkey, count in (doc.get("dups") or {}).items():
        out += (key("events_duplicate", tkey.replace("_", ".", 1)), count)
    return out


def lead_contribution(doc, rules):
    s = lead_summary(doc, rules)
    out = _common(doc)
    if s["source"] is not None:
        out += (key("leads_created", rules.source_label(s["source"])), 1)
    for stage in s["entered"]:
        out += (key("funnel_entered", stage), 1)
    for stage in rules.lead_stages[:s["reached"] + 1]:
        out += (key("funnel_reached", stage, LEAD_ORIGIN), 1)
    if s["current"] is not None:
        out += (key("funnel_current", s["current"]), 1)
    if s["first_response"] is not None:
        out = _observe(out, rules, "lead_first_response_seconds", (), s["first_response"])
    return out


def deal_contribution(doc, rules):
    s = deal_summary(doc, rules)
    out = _common(doc)
    for stage in s["entered"]:
        out += (key("funnel_entered", rules.deal_stage_label(stage)), 1)
    if s["funnel"]:
        for stage in rules.deal_funnel[:s["reached"] + 1]:
            out += (key("funnel_reached", stage, s["origin"]), 1)
    for outcome, cycle, reason in s["closes"]:
        out = _observe(out, rules, "deal_cycle_seconds", (outcome,), cycle)
        if outcome == "lost":
            out += (key("deals_lost", rules.reason_label(reason)), 1)
    if s["outcome"] is not None:
        out += (key("deals_closed", s["outcome"]), 1)
    if s["current"] is not None:
        out += (key("funnel_current", rules.deal_stage_label(s["current"])), 1)
    if s["outcome"] is None and s["amount"] is not None and s["currency"]:
        stage = rules.deal_stage_label(s["current"])
        out += (key("pipeline_amount", stage, s["currency"]), s["amount"])
        month = (s["expected_close"] or "")[:7] or "unscheduled"
        weighted = s["amount"] * Decimal(s["probability"] or 0) / 100
        out += (key("forecast_weighted_amount", s["currency"], month), weighted)
    return out


def quote_contribution(doc, rules):
    facts = _ordered(doc)
    out = _common(doc)
    seen = {f["type"].split(".", 1)[1] for f in facts}
    for status in QUOTE_STATUSES:
        if status in seen:
            out += (key("quotes", status), 1)
    for fact in facts:
        if fact["type"] == "quote.approved":
            waited = _micros(_aware(fact["approved_at"]) - _aware(fact["submitted_at"]))
            out = _observe(out, rules, "quote_approval_seconds", (), waited)
    return out + quotes_kpis.quote_series(facts, key)


def contract_contribution(doc, rules):
    return _common(doc) + quotes_kpis.contract_series(_ordered(doc), key)


def _support_tickets(doc, rules):
    # metrics.support_kpis builds on this module's helpers: imported when first used
    from metrics.support_kpis import ticket_contribution
    return ticket_contribution(doc, rules)


def _support_deliveries(doc, rules):
    from metrics.support_kpis import delivery_contribution
    return delivery_contribution(doc, rules)


CONTRIBUTIONS = {"leads": lead_contribution, "deals": deal_contribution,
                 "quotes": quote_contribution, "tickets": _support_tickets,
                 "contracts": contract_contribution, "deliveries": _support_deliveries}


def contribution(kind, doc, rules):
    return CONTRIBUTIONS[kind](doc, rules)


class Aggregates:
    """The sum of every known entity's contribution, with each entity's revision, so a
    stale read never replaces a newer one. Apply and render are pure in-memory work: the
    cost of a scrape depends on the number of series, not on the history."""

    def __init__(self, decode=None):
        self.values = {}
        # entity id -> (rev, contribution); a contribution restored from a snapshot stays
        # encoded (a str) until the entity changes, when `decode` turns it back
        self.entities = {kind: {} for kind in CONTRIBUTIONS}
        self.decode = decode
        self.changes = 0

    def known_rev(self, kind, entity_id):
        known = self.entities[kind].get(entity_id)
        return known[0] if known else 0

    def replace(self, kind, entity_id, rev, contrib):
        """Swap the entity's contribution for a newer one; False when `rev` is not newer."""
        entities = self.entities[kind]
        old = entities.get(entity_id)
        if old is not None and old[0] >= rev:
            return False
        values = self.values
        if old is not None:
            prev = old[1]
            if isinstance(prev, str):
                prev = self.decode(prev)
            for i in range(0, len(prev), 2):
                values[prev[i]] -= prev[i + 1]
        for i in range(0, len(contrib), 2):
            k = contrib[i]
            values[k] = values.get(k, 0) + contrib[i + 1]
        entities[entity_id] = (rev, contrib)
        self.changes += 1
        return True

    def entity_count(self, kind):
        return len(self.entities[kind])


# --- cohort funnel ---------------------------------------------------------------------------


def cohort_funnel(lead_docs, deal_docs, rules, pipeline=None):
    """For the leads given (one creation window), how many reached each funnel stage, the
    stage-to-stage and overall conversion rates and the median time between stages.

    A lead's deal stages come from the deals opened from it (`lead_id`) in `pipeline`, by
    default the funnel pipeline (the deal stages are its stages, in its order: a deal of
    another pipeline would count as passing stages it never had); with several, the one
    that got furthest counts, the lowest deal id among equals.
    """
    pipeline = pipeline or rules.funnel_pipeline
    deals_by_lead = {}
    for doc in sorted(deal_docs, key=lambda d: d["_id"]):
        s = deal_summary(doc, rules)
        if s["pipeline_id"] != pipeline:
            continue
        if s["lead_id"]:
            best = deals_by_lead.get(s["lead_id"])
            if best is None or s["reached"] > best["reached"]:
                deals_by_lead[s["lead_id"]] = s
    n_lead = len(rules.lead_stages)
    reached = [0] * len(rules.funnel)
    gaps = [[] for _ in rules.funnel[1:]]
    for doc in lead_docs:
        lead = lead_summary(doc, rules)
        deal = deals_by_lead.get(doc["_id"])
        furthest = lead["reached"]
        times = dict(lead["times"])
        if deal is not None and deal["reached"] >= 0:
            furthest = max(furthest, n_lead + deal["reached"])
            times.update(deal["times"])
        for i in range(furthest + 1):
            reached[i] += 1
        for i, (a, b) in enumerate(zip(rules.funnel, rules.funnel[1:], strict=False)):
            if i + 1 <= furthest and times.get(a) and times.get(b):
                gaps[i].append(_micros(times[b] - times[a]) / MICROS)
    stages = [{"stage": stage, "reached": count}
              for stage, count in zip(rules.funnel, reached, strict=True)]
    transitions = []
    for i, (a, b) in enumerate(zip(rules.funnel, rules.funnel[1:], strict=False)):
        transitions.append({
            "from": a, "to": b,
            "conversion_rate": _rate(reached[i + 1], reached[i]),
            "median_seconds": round(statistics.median(gaps[i]), 3) if gaps[i] else None,
            "samples": len(gaps[i]),
        })
    return {
        "leads": len(lead_docs),
        "stages": stages,
        "transitions": transitions,
        "overall_conversion_rate": _rate(reached[-1], reached[0]),
    }


def _rate(num, den):
    return round(num / den, 4) if den else None
