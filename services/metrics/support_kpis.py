"""Support KPIs from a ticket's facts (pure, like metrics.domain): tickets opened, open now
by priority (a gauge: each ticket once, by the status of its highest-sequence fact that
carries one), first-response and resolution time, SLA attainment per clock (from the
`sla_met` the support service computes in working time, pauses excluded), warnings,
breaches and CSAT. Categories are free text in support, so they are not labels here
(bounded cardinality); priorities are.
"""
from metrics.domain import _common, _observe, _ordered, _seconds_micros, key

OPEN_STATUSES = ("new", "open", "pending")
# the status a fact's type implies where it carries none
STATUS_OF = {"ticket.opened": "new", "ticket.resolved": "resolved", "ticket.reopened": "open"}


def status_now(facts):
    status = None
    for fact in facts:  # in sequence order: the last one that says wins
        if fact["type"] == "ticket.status_changed":
            status = fact.get("to_status") or status
        elif fact["type"] in STATUS_OF:
            status = STATUS_OF[fact["type"]]
    return status


def ticket_contribution(doc, rules):
    facts = _ordered(doc)
    out = _common(doc)
    priority = next((f.get("priority") for f in facts if f.get("priority")), None)
    if status_now(facts) in OPEN_STATUSES:
        out += (key("tickets_open", priority), 1)
    for fact in facts:
        etype, priority = fact["type"], fact.get("priority")
        if etype == "ticket.opened":
            out += (key("tickets_opened", priority), 1)
        elif etype == "ticket.first_responded":
            out = _observe(out, rules, "ticket_first_response_seconds", (priority,),
                           _seconds_micros(fact["first_response_seconds"]))
            out = _attainment(out, "first_response", fact)
        elif etype == "ticket.resolved":
            out = _observe(out, rules, "ticket_resolution_seconds", (priority,),
                           _seconds_micros(fact["resolution_seconds"]))
            out = _attainment(out, "resolution", fact)
        elif etype == "ticket.sla_warning":
            out += (key("ticket_sla_warnings", fact["kind"], priority), 1)
        elif etype == "ticket.sla_breached":
            out += (key("ticket_sla_breaches", fact["kind"], priority), 1)
        elif etype == "ticket.rated":
            out += (key("csat_ratings", str(fact["score"])), 1)
    return out


def _attainment(out, kind, fact):
    met = fact.get("sla_met")
    if met is None:  # events published before sla_met existed
        return out
    return out + (key("ticket_sla_outcomes", kind, "met" if met else "missed"), 1)
