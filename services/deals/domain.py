"""Deal rules: creation, moves through stage gates, won/lost/reopen, edits, accepted quotes
and stalls. Pure: each function returns the change it makes and the events it causes as
values; the store writes both in one single-document update.

Every change emits at least one event, and the deal's version grows by one per event, so
an event's `sequence` is the version of the deal right after it (a win is two events:
deal.stage_changed, then deal.won).

Closed is closed: a won or lost deal changes only through reopen (edits, moves and closes
are refused with a Conflict naming reopen). Every change of stage, amount, currency or
owner is an entry of the deal's history with its actor: a change returns its new entries
(`Change.history`), and the store keeps them in bounded buckets (kit.buckets), the deal
document only its recent ones, so a deal's cost per change does not grow with its past.

A deal that names a lead: the lead's conversion opens it (origin "lead"; its id derives
from the lead's, so there is one per lead), or a rep opened it with that `lead_id` before
the conversion (origin "direct" until then). When lead.converted finds such a deal, the
deal is adopted (origin becomes "lead") and the conversion's amount and currency are
applied if the deal is open and has no amount yet; otherwise the deal keeps its amount and
the conversion's amount is recorded in its history. Either way deal.updated says what
happened, so no conversion amount is ever dropped silently.
"""
import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from deals import pipelines as P
from kit import reasons
from kit.errors import Conflict, Invalid
from kit.money import in_currency

OPEN = "open"
# Where a deal came from: a lead's conversion, or opened directly (POST /deals).
LEAD_ORIGIN = "lead"
DIRECT_ORIGIN = "direct"
# a deal named after a person whose data was erased (deals.domain.erase_contact)
ERASED_NAME = "(erased contact)"
# Field edits that are recorded in the history (with their old and new values).
AUDITED = ("amount", "currency", "owner_id")

# Fields PATCH may change, in the order `changed` lists them.
EDITABLE = ("name", "account", "contact", "owner_id", "amount", "currency", "expected_close",
            "probability", "needs_summary", "custom")


@dataclass
class Change:
    """What one write does: fields to set, events to emit, history entries to append."""

    set: dict
    events: list
    history: list = field(default_factory=list)

    def as_deal(self, deal):
        """The deal after this change (what the caller gets back)."""
        return {**deal, **self.set, "history": [*deal.get("history", []), *self.history],
                "version": deal["version"] + len(self.events)}


def _text(value):
    """History values as stored (money as its decimal string, dates ISO)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class GateNotMet(Conflict):
    title = "Stage gate not met"


def stall_due_at(stage, last_activity_at, day_seconds):
    """When a deal idle since `last_activity_at` in `stage` counts as stalled (None: never)."""
    if stage["terminal"] or stage.get("stall_days") is None:
        return None
    try:
        return last_activity_at + dt.timedelta(seconds=stage["stall_days"] * day_seconds)
    except OverflowError:  # an activity dated late in year 9999: no datetime is that late
        return None


def _activity(stage, now, day_seconds):
    return {"last_activity_at": now, "updated_at": now, "stalled_at": None,
            "stall_due_at": stall_due_at(stage, now, day_seconds)}


def _check_money(deal):
    """An amount needs a currency and fits its minor units; the amount is set (in place)
    to exactly those units. A PATCH may change one without the other, so the schema alone
    cannot check this: 100.00 CNY may become JPY (100), 100.50 CNY may not."""
    amount = deal.get("amount")
    if amount is None:
        return
    if not deal.get("currency"):
        raise Invalid("An amount needs a currency.",
                      errors={"currency": ["Required when an amount is given."]})
    try:
        deal["amount"] = in_currency(Decimal(amount).normalize(), deal["currency"])
    except ValueError as exc:
        raise Invalid(str(exc), errors={"amount": [str(exc)]}) from None


def _check_gate(pipeline, deal, from_key, to_key):
    missing = P.missing_for(pipeline, deal, from_key, to_key)
    if missing["fields"] or missing["checklist"]:
        parts = [f"fields: {', '.join(missing['fields'])}" if missing["fields"] else "",
                 f"checklist: {', '.join(missing['checklist'])}" if missing["checklist"] else ""]
        raise GateNotMet(
            f"Cannot enter stage {to_key!r}; missing {'; '.join(p for p in parts if p)}.",
            stage=to_key, missing_fields=missing["fields"],
            missing_checklist=missing["checklist"])


def _check_checklist(pipeline, items):
    known = set(P.checklist_items(pipeline))
    unknown = [i for i in items if i not in known]
    if unknown:
        raise Invalid("Unknown checklist items for this pipeline.",
                      errors={"checklist": {i: ["Not a checklist item of this pipeline."]
                                            for i in unknown}},
                      allowed=sorted(known))


def _stage_or_invalid(pipeline, key):
    stage = P.stage_of(pipeline, key)
    if stage is None:
        raise Invalid(f"No stage {key!r} in pipeline {pipeline['_id']!r}.",
                      errors={"stage": [f"Not a stage of pipeline {pipeline['_id']!r}."]},
                      allowed=[s["key"] for s in P.open_stages(pipeline)])
    return stage


# --- event data ------------------------------------------------------------------------------


def _money(deal):
    return {"amount": deal.get("amount"), "currency": deal.get("currency")}


def _origin(deal):
    return deal.get("origin") or DIRECT_ORIGIN


def created_data(deal):
    return {"deal_id": deal["_id"], "pipeline_id": deal["pipeline_id"], "stage": deal["stage"],
            "name": deal["name"], "owner_id": deal.get("owner_id"), **_money(deal),
            "probability": deal["probability"], "expected_close": deal.get("expected_close"),
            "lead_id": deal.get("lead_id"), "origin": _origin(deal),
            "created_at": deal["created_at"]}


def _stage_changed(deal, to_key, probability, now):
    return ("deal.stage_changed", {
        "deal_id": deal["_id"], "pipeline_id": deal["pipeline_id"],
        "from_stage": deal["stage"], "to_stage": to_key, "probability": probability,
        **_money(deal), "owner_id": deal.get("owner_id"),
        "expected_close": deal.get("expected_close"), "changed_at": now})


def _updated(deal, changed):
    return ("deal.updated", {
        "deal_id": deal["_id"], "pipeline_id": deal["pipeline_id"], "stage": deal["stage"],
        "changed": list(changed), **_money(deal), "probability": deal["probability"],
        "owner_id": deal.get("owner_id"), "expected_close": deal.get("expected_close"),
        "origin": _origin(deal)})


def _transition(from_key, to_key, now, actor, reason=None):
    entry = {"from": from_key, "to": to_key, "at": now, "by": actor}
    if reason:
        entry["reason"] = reason
    return entry


# Deals opened from leads get an id derived from the lead, so a redelivered lead.converted
# (or a second instance handling it) can only ever create the same one deal.
LEAD_NAMESPACE = uuid.UUID("6f1c7f4e-2b7a-5d2e-9a57-0d3c1f0a9e11")


def deal_id_for_lead(lead_id):
    return str(uuid.uuid5(LEAD_NAMESPACE, f"lead:{lead_id}"))


def deal_from_lead(lead):
    """New-deal input from a lead.converted event's data."""
    contact = {k: lead.get(k) for k in ("name", "email", "phone") if lead.get(k)}
    return {"name": lead.get("company") or lead["name"], "account": lead.get("company"),
            "contact": contact or None, "owner_id": lead.get("owner_id"),
            "amount": lead.get("amount"),
            "currency": lead.get("currency"),
            "lead_id": lead["lead_id"], "origin": LEAD_ORIGIN,
            "account_id": lead.get("account_id"), "contact_id": lead.get("contact_id"),
            "custom": {"lead_source": lead["source"]}}


def opened_at(lead, now):
    """When the deal of a lead.converted event starts: at the conversion (a historical one
    lies in the past), never later than now (a producer's clock ahead of ours)."""
    converted = lead.get("converted_at")
    return min(converted, now) if converted is not None else now


# --- creation --------------------------------------------------------------------------------


def new_deal(pipeline, data, deal_id, now, *, actor=None, day_seconds=86400):
    """A new deal in `data["stage"]` (default: the first open stage), gates checked.

    Returns (deal, events)."""
    key = data.get("stage") or P.first_stage(pipeline)["key"]
    stage = _stage_or_invalid(pipeline, key)
    if stage["terminal"]:
        raise Invalid("A deal starts in an open stage.",
                      errors={"stage": ["Must be an open stage."]})
    _check_checklist(pipeline, data.get("checklist") or [])
    deal = {
        "_id": deal_id,
        "name": data["name"],
        "account": data.get("account"),
        "contact": data.get("contact"),
        "owner_id": data.get("owner_id"),
        # the owner's team (people directory) when the deal got its owner: a manager's reach
        "team": data.get("team"),
        "amount": data.get("amount"),
        "currency": data.get("currency"),
        "expected_close": data.get("expected_close"),
        "pipeline_id": pipeline["_id"],
        "stage": key,
        "status": OPEN,
        "probability": stage["probability"],
        "lead_id": data.get("lead_id"),
        "account_id": data.get("account_id"),
        "contact_id": data.get("contact_id"),
        "origin": data.get("origin") or DIRECT_ORIGIN,
        "needs_summary": data.get("needs_summary"),
        "custom": dict(data.get("custom") or {}),
        "checklist": list(dict.fromkeys(data.get("checklist") or [])),
        "accepted_quote": None,
        "contract_signed": None,
        "first_payment": None,
        "lost_reason": None,
        "closed_at": None,
        "history": [_transition(None, key, now, actor)],
        "version": 1,
        "created_at": now,
        **_activity(stage, now, day_seconds),
    }
    _check_money(deal)
    _check_gate(pipeline, deal, None, key)
    return deal, [("deal.created", created_data(deal))]


# --- moves -----------------------------------------------------------------------------------


def _require_open(deal):
    if deal["status"] != OPEN:
        raise Conflict(f"The deal is {deal['status']}; reopen it first "
                       f"(POST /api/v1/deals/{deal['_id']}/reopen).",
                       deal_status=deal["status"])


def move(pipeline, deal, to_key, now, *, actor=None, day_seconds=86400):
    """Move an open deal to another open stage."""
    _require_open(deal)
    stage = _stage_or_invalid(pipeline, to_key)
    if stage["terminal"]:
        raise Invalid(f"Use /{to_key} to close a deal.",
                      errors={"stage": ["Must be an open stage; use /won or /lost."]})
    if to_key == deal["stage"]:
        raise Conflict(f"The deal is already in stage {to_key!r}.", stage=to_key)
    _check_gate(pipeline, deal, deal["stage"], to_key)
    return Change(
        set={"stage": to_key, "probability": stage["probability"],
             **_activity(stage, now, day_seconds)},
        events=[_stage_changed(deal, to_key, stage["probability"], now)],
        history=[_transition(deal["stage"], to_key, now, actor)])


def win(pipeline, deal, now, *, actor=None):
    _require_open(deal)
    stage = P.stage_of(pipeline, P.WON)
    _check_gate(pipeline, deal, deal["stage"], P.WON)
    won = ("deal.won", {
        "deal_id": deal["_id"], "pipeline_id": deal["pipeline_id"],
        "from_stage": deal["stage"], **_money(deal), "owner_id": deal.get("owner_id"),
        "lead_id": deal.get("lead_id"), "account": deal.get("account"),
        "created_at": deal["created_at"], "won_at": now})
    return Change(
        set={"stage": P.WON, "status": P.WON, "probability": stage["probability"],
             "closed_at": now, "closed_from": deal["stage"], **_activity(stage, now, 0)},
        events=[_stage_changed(deal, P.WON, stage["probability"], now), won],
        history=[_transition(deal["stage"], P.WON, now, actor)])


def lose(pipeline, deal, reason, now, *, actor=None, reason_text=None):
    """Close as lost with a reason of the pipeline's picklist (kit.reasons: other + text)."""
    _require_open(deal)
    reason, reason_text = reasons.resolve(P.lost_reasons(pipeline), reason, reason_text)
    stage = P.stage_of(pipeline, P.LOST)
    _check_gate(pipeline, deal, deal["stage"], P.LOST)
    lost = ("deal.lost", {
        "deal_id": deal["_id"], "pipeline_id": deal["pipeline_id"],
        "from_stage": deal["stage"], "reason": reason, "reason_text": reason_text,
        **_money(deal), "owner_id": deal.get("owner_id"), "created_at": deal["created_at"],
        "lost_at": now})
    return Change(
        set={"stage": P.LOST, "status": P.LOST, "probability": stage["probability"],
             "lost_reason": reason, "lost_reason_text": reason_text, "closed_at": now,
             "closed_from": deal["stage"], **_activity(stage, now, 0)},
        events=[_stage_changed(deal, P.LOST, stage["probability"], now), lost],
        history=[_transition(deal["stage"], P.LOST, now, actor, reason)])


def reopen(pipeline, deal, now, to_key=None, *, actor=None, day_seconds=86400):
    """Reopen a won or lost deal into `to_key`, by default the stage it was closed from."""
    if deal["status"] == OPEN:
        raise Conflict("The deal is open already.", deal_status=OPEN)
    if to_key is None:
        to_key = deal.get("closed_from")
        if to_key is None:  # closed before closed_from was kept: its recent history says
            closing = [t for t in deal.get("history", []) if t.get("to") == deal["stage"]]
            to_key = closing[-1]["from"] if closing and closing[-1]["from"] else None
        if P.stage_of(pipeline, to_key or "") is None:
            to_key = P.first_stage(pipeline)["key"]
    stage = _stage_or_invalid(pipeline, to_key)
    if stage["terminal"]:
        raise Invalid("A deal reopens into an open stage.",
                      errors={"stage": ["Must be an open stage."]})
    _check_gate(pipeline, deal, deal["stage"], to_key)
    return Change(
        set={"stage": to_key, "status": OPEN, "probability": stage["probability"],
             "lost_reason": None, "lost_reason_text": None, "closed_at": None,
             "closed_from": None, **_activity(stage, now, day_seconds)},
        events=[_stage_changed(deal, to_key, stage["probability"], now)],
        history=[_transition(deal["stage"], to_key, now, actor)])


# --- edits -----------------------------------------------------------------------------------


def _edits(deal, after, changed, now, actor, **note):
    """A history entry for the audited fields among `changed` (None when there are none)."""
    edits = {k: {"from": _text(deal.get(k)), "to": _text(after.get(k))}
             for k in changed if k in AUDITED}
    if not edits and not note:
        return None
    return {"at": now, "by": actor, "changes": edits, **note}


def update(pipeline, deal, data, now, *, actor=None, day_seconds=86400):
    """Apply a PATCH: fields, custom fields (null removes one) and checklist ticks. Only an
    open deal is edited (closed is closed: reopen first).

    Returns None when nothing would change (no write, no event)."""
    _require_open(deal)
    after = dict(deal)
    changed = []
    for name in EDITABLE:
        if name not in data:
            continue
        value = data[name]
        if name == "custom":
            value = {**(deal.get("custom") or {}), **value}
            value = {k: v for k, v in value.items() if v is not None}
        if value != deal.get(name):
            after[name] = value
            changed.append(name)
    ticks = data.get("checklist") or {}
    if ticks:
        _check_checklist(pipeline, list(ticks))
        items = [i for i in deal.get("checklist") or [] if ticks.get(i, True)]
        items += [i for i, on in ticks.items() if on and i not in items]
        if items != list(deal.get("checklist") or []):
            after["checklist"] = items
            changed.append("checklist")
    if not changed:
        return None
    _check_money(after)
    if "currency" in changed and after.get("amount") is not None and "amount" not in changed:
        changed.insert(changed.index("currency"), "amount")  # its minor units follow
    stage = P.stage_of(pipeline, deal["stage"])
    entry = _edits(deal, after, changed, now, actor)
    team = {"team": data.get("team")} if "owner_id" in changed else {}
    return Change(set={**{k: after[k] for k in changed}, **team,
                       **_activity(stage, now, day_seconds)},
                  events=[_updated(after, changed)], history=[entry] if entry else [])


def adopt_conversion(pipeline, deal, lead, now, *, actor=None, day_seconds=86400):
    """lead.converted for a lead that already has a deal (opened with its lead_id before
    the conversion): the deal becomes the lead's (origin "lead"); the conversion's amount
    and currency apply when the deal is open and has no amount, else they are recorded in
    the history as not applied. None when the deal is the lead's already (a redelivery)."""
    if deal.get("origin") == LEAD_ORIGIN:
        return None
    amount, currency = lead.get("amount"), lead.get("currency")
    after = {**deal, "origin": LEAD_ORIGIN}
    applies = (amount is not None and deal["status"] == OPEN and deal.get("amount") is None)
    if applies:
        after.update(amount=amount, currency=currency)
    changed = [k for k in ("origin", "amount", "currency") if after.get(k) != deal.get(k)]
    note = {"event": "lead.converted", "lead_id": lead["lead_id"]}
    if amount is not None and not applies:
        note["not_applied"] = {"amount": _text(amount), "currency": currency}
    entry = _edits(deal, after, changed, now, actor, **note)
    stage = P.stage_of(pipeline, deal["stage"])
    activity = _activity(stage, now, day_seconds) if deal["status"] == OPEN else {}
    return Change(set={**{k: after[k] for k in changed}, **activity},
                  events=[_updated(after, changed)], history=[entry])


def erase_contact(deal, lead_id, now, *, actor=None):
    """lead.erased: drop the contact data copied from the lead, and the lead's name where
    it became the deal's name (a lead without a company). None when nothing is left to
    drop (a redelivery). Deals of any status: erasure does not wait for a deal to close."""
    contact = deal.get("contact") or {}
    after = {**deal, "contact": None}
    if contact.get("name") and deal["name"] == contact["name"]:
        after["name"] = ERASED_NAME
    changed = [k for k in ("name", "contact") if after.get(k) != deal.get(k)]
    if not changed:
        return None
    entry = {"at": now, "by": actor, "changes": {}, "event": "lead.erased",
             "lead_id": lead_id, "erased": changed}
    return Change(set={k: after[k] for k in changed}, events=[_updated(after, changed)],
                  history=[entry])


def accept_quote(pipeline, deal, quote, now, *, actor=None, day_seconds=86400):
    """Record the accepted quote (it meets the `accepted_quote` gate); its total becomes the
    deal's amount, since that is now what the customer agreed to pay. A closed deal takes
    no quote (closed is closed): the Conflict dead-letters the event, to be replayed after
    a reopen."""
    _require_open(deal)
    record = {"quote_id": quote["quote_id"], "version": quote["version"],
              "total": quote["total"], "currency": quote["currency"],
              "accepted_at": quote["accepted_at"]}
    after = {**deal, "accepted_quote": record, "amount": quote["total"],
             "currency": quote["currency"]}
    changed = [k for k in ("accepted_quote", "amount", "currency") if after[k] != deal.get(k)]
    if not changed:
        return None
    stage = P.stage_of(pipeline, deal["stage"])
    entry = _edits(deal, after, changed, now, actor, event="quote.accepted",
                   quote_id=quote["quote_id"], quote_version=quote["version"])
    return Change(set={**{k: after[k] for k in changed}, **_activity(stage, now, day_seconds)},
                  events=[_updated(after, changed)], history=[entry])


def _record(pipeline, deal, field, record, event, now, actor, day_seconds):
    """Set a fact from another service's event (it meets a gate of that name) once, with
    a history entry; a closed deal has no gate left to meet, so it records nothing."""
    if deal["status"] != OPEN or deal.get(field):
        return None
    after = {**deal, field: record}
    stage = P.stage_of(pipeline, deal["stage"])
    entry = _edits(deal, after, [field], now, actor, event=event)
    return Change(set={field: record, **_activity(stage, now, day_seconds)},
                  events=[_updated(after, [field])], history=[entry])


def sign_contract(pipeline, deal, contract, now, *, actor=None, day_seconds=86400):
    """contract.signed: the deal's signed contract (meets the `contract_signed` gate)."""
    record = {"contract_id": contract["contract_id"], "signed_at": contract["signed_at"]}
    return _record(pipeline, deal, "contract_signed", record, "contract.signed", now, actor,
                   day_seconds)


def record_payment(pipeline, deal, payment, now, *, actor=None, day_seconds=86400):
    """payment.received: the deal's first payment (meets a `first_payment` gate)."""
    record = {"payment_id": payment["payment_id"], "amount": payment["paid"],
              "currency": payment["currency"], "received_at": payment["received_at"]}
    return _record(pipeline, deal, "first_payment", record, "payment.received", now, actor,
                   day_seconds)


def stall(pipeline, deal, now, *, day_seconds=86400):
    """deal.stalled for an open deal idle past its stage's stall days, else None."""
    stage = P.stage_of(pipeline, deal["stage"])
    if deal["status"] != OPEN or stage is None or deal.get("stalled_at"):
        return None
    due = stall_due_at(stage, deal["last_activity_at"], day_seconds)
    if due is None or due > now:
        return None
    idle = int((now - deal["last_activity_at"]).total_seconds() // day_seconds)
    # no longer due: the stall check's index range holds only deals still to stall, so a
    # pass reads what is due, not every stalled deal again
    return Change(set={"stalled_at": now, "stall_due_at": None}, events=[("deal.stalled", {
        "deal_id": deal["_id"], "pipeline_id": deal["pipeline_id"], "stage": deal["stage"],
        "owner_id": deal.get("owner_id"), "idle_days": idle,
        "last_activity_at": deal["last_activity_at"]})])


# --- history (an admin loading the past) -----------------------------------------------------

HISTORY_ACTIONS = ("update", "move", "won", "lost")


def last_time(deal):
    """When the deal last changed as its history says (its creation at the latest)."""
    times = [t["at"] for t in deal.get("history") or () if t.get("at") is not None]
    return max([deal["created_at"], *times])


LEAD_REFERENCE = "lead:"


def history_target(reference):
    """The deal a history item names: its id, or `lead:<id>` for the lead's deal."""
    if reference.startswith(LEAD_REFERENCE):
        return deal_id_for_lead(reference[len(LEAD_REFERENCE):])
    return reference


def replay(pipeline, deal, steps, now, *, actor=None, day_seconds=86400):
    """An admin's record of what happened to a deal: each step (an edit, a move, a win or a
    loss) goes through the same rules and gates as a live one, at its own past time, in
    time order, never before the deal's last change nor in the future. Each history entry
    says it was recorded later (`recorded_at`, `historical`); the events carry the past
    times in their data. Returns one Change with the events of all steps (a gap-free run
    of sequences), or None for no steps."""
    current, merged, events, history, previous = deal, {}, [], [], last_time(deal)
    for number, step in enumerate(steps):
        at = step["at"]
        if at < previous:
            raise Invalid("History steps go forward in time.", errors={"steps": {number: {
                "at": [f"Must not be before the deal's last change ({previous.isoformat()})."]
            }}})
        if at > now:
            raise Invalid("History lies in the past.",
                          errors={"steps": {number: {"at": ["Must not be in the future."]}}})
        change = _step(pipeline, current, step, at, actor, day_seconds)
        if change is None:
            continue
        change.history = [{**e, "recorded_at": now, "historical": True}
                          for e in change.history]
        merged.update(change.set)
        events.extend(change.events)
        history.extend(change.history)
        current = change.as_deal(current)
        previous = at
    if not events:
        return None
    return Change(set=merged, events=events, history=history)


def _step(pipeline, deal, step, at, actor, day_seconds):
    action = step["action"]
    if action == "update":
        edit = dict(step.get("fields") or {})
        if "checklist" in edit:  # ticked items, as PATCH's item -> ticked
            edit["checklist"] = dict.fromkeys(edit["checklist"], True)
        return update(pipeline, deal, edit, at, actor=actor, day_seconds=day_seconds)
    if action == "move":
        if not step.get("stage"):
            raise Invalid("A move names its stage.", errors={"stage": ["Required for move."]})
        return move(pipeline, deal, step["stage"], at, actor=actor, day_seconds=day_seconds)
    if action == "won":
        return win(pipeline, deal, at, actor=actor)
    return lose(pipeline, deal, step.get("reason"), at, actor=actor,
                reason_text=step.get("reason_text"))
