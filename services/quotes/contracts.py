"""Contract and payment rules: an accepted quote's contract, its payment schedule, the
customer's signature through a link, an optional countersignature, payments (idempotent
by key, never beyond the amount) and voiding. Pure: functions return kit.changes.Change
or (document, events); the store writes each in one single-document update.

The schedule's milestones come from config (e.g. 30 % on signing, 70 % on delivery
acceptance); each is rounded half-up to the currency's minor unit and the last takes the
remainder, so they add up to the amount exactly. A milestone falls due `due_days` after
its trigger (the signature, or the delivery's acceptance); payments fill milestones in
order.
"""
import datetime as dt
import uuid
from decimal import Decimal

from kit.changes import Change
from kit.errors import Conflict, Invalid
from kit.money import in_currency, rounded
from quotes.domain import LinkRefused, LinkUsed

UNSIGNED = "unsigned"
SIGNED = "signed"  # by the customer, waiting for our countersignature
EXECUTED = "executed"  # signed by all who must: contract.signed was emitted
VOIDED = "voided"
STATUSES = (UNSIGNED, SIGNED, EXECUTED, VOIDED)
HUNDRED = Decimal(100)
CONTRACT_NAMESPACE = uuid.UUID("1b6f0c61-5f3e-4b8a-9f57-3f4f2d7c9a10")

# triggers a milestone may wait for
ON_SIGNING = "signed"
ON_DELIVERY = "delivery_accepted"


def contract_id_for_quote(quote_id):
    """One contract per accepted quote, however often quote.accepted arrives."""
    return str(uuid.uuid5(CONTRACT_NAMESPACE, f"quote:{quote_id}"))


def payment_id_for(contract_id, key):
    """A payment's id from its Idempotency-Key: the same key is the same payment."""
    return str(uuid.uuid5(CONTRACT_NAMESPACE, f"payment:{contract_id}:{key}"))


def milestones(schedule, amount, currency):
    """The schedule's milestones for `amount`, adding up to it exactly."""
    percents = [Decimal(str(m["percent"])) for m in schedule]
    if sum(percents) != HUNDRED:
        raise ValueError(f"payment schedule percents add up to {sum(percents)}, not 100")
    out, left = [], amount
    for number, (step, percent) in enumerate(zip(schedule, percents, strict=True)):
        share = left if number == len(schedule) - 1 else rounded(amount * percent / HUNDRED,
                                                                 currency)
        left -= share
        out.append({"key": step["key"], "label": step["label"], "percent": percent,
                    "amount": share, "trigger": step["trigger"],
                    "due_days": int(step.get("due_days", 0)), "due_at": None,
                    "paid": share * 0})
    return out


def _ref(contract):
    return {"contract_id": contract["_id"], "quote_id": contract["quote_id"],
            "deal_id": contract["deal_id"], "amount": contract["amount"],
            "currency": contract["currency"]}


def new_contract(quote, seller, schedule, terms, now, *, link_id=None, link_expires_at=None):
    """The contract of an accepted quote; returns (contract, events). With a link id it is
    open for signing from the start (contract.created means "ready to sign": the customer
    accepted the quote and expects the contract next); `send` replaces that link."""
    contract_id = contract_id_for_quote(quote["_id"])
    customer = quote.get("customer") or {}
    contract = {
        "_id": contract_id, "number": "C-" + contract_id.replace("-", "")[:10].upper(),
        "quote_id": quote["_id"], "quote_number": quote["number"],
        "quote_version": quote["quote_version"], "deal_id": quote["deal_id"],
        "owner_id": quote.get("owner_id"),
        "parties": {"seller": seller,
                    "buyer": {"name": customer.get("name"),
                              "representative": (quote.get("response") or {}).get("name")
                              or customer.get("contact"),
                              "address": customer.get("address")}},
        "amount": quote["totals"]["total"], "currency": quote["currency"],
        "milestones": milestones(schedule, quote["totals"]["total"], quote["currency"]),
        "terms": "\n\n".join(t for t in (terms, quote.get("terms")) if t),
        "next_due_at": None, "status": UNSIGNED, "link_id": link_id,
        "link_expires_at": link_expires_at if link_id else None,
        "signature": None,
        "countersignature": None, "payments": [], "paid_total": quote["totals"]["total"] * 0,
        "fully_paid_at": None, "voided": None, "created_at": now, "updated_at": now,
    }
    return contract, [("contract.created", {**_ref(contract), "number": contract["number"],
                                            "created_at": now})]


def _require(contract, *statuses, doing):
    if contract["status"] not in statuses:
        raise Conflict(f"A {contract['status']} contract cannot be {doing}.",
                       status=contract["status"])


def reschedule(contract, schedule, now, *, actor=None):
    """This contract's own payment schedule instead of the configured one (before it is
    signed: the customer signs the schedule). Percents must add up to 100."""
    _require(contract, UNSIGNED, doing="rescheduled (the customer signed its schedule)")
    try:
        planned = milestones(schedule, contract["amount"], contract["currency"])
    except ValueError as exc:
        raise Invalid(str(exc), errors={"milestones": [str(exc)]}) from None
    # a new schedule is a new document to sign: an open signing link stops working
    return Change(set={"milestones": planned, "link_id": None, "link_expires_at": None,
                       "updated_at": now}, actor=actor)


def send(contract, link_id, expires_at, now, *, actor=None):
    """A (new) signing link for an unsigned contract: older links stop working, so the
    customer is sent this one (contract.sent)."""
    _require(contract, UNSIGNED, doing="sent for signature")
    return Change(set={"link_id": link_id, "link_expires_at": expires_at, "updated_at": now},
                  events=[("contract.sent", {**_ref(contract), "number": contract["number"],
                                             "link_expires_at": expires_at, "sent_at": now})],
                  actor=actor)


def check_open_link(contract, now):
    """Conflict unless the contract has a signing link a customer can use now."""
    _require(contract, UNSIGNED, doing="signed through a link")
    if not contract.get("link_id"):
        raise Conflict("The contract has no open signing link (it was rescheduled): send "
                       "a new one.", status=contract["status"], reason="no_link")
    if contract["link_expires_at"] <= now:
        raise Conflict("The contract's signing link has expired: send a new one.",
                       status=contract["status"], reason="link_expired")


def _schedule(milestones_):
    """The milestones and when the first unpaid one falls due (indexed, so the overdue
    check reads only contracts with something due)."""
    due = [m["due_at"] for m in milestones_
           if m["due_at"] is not None and m["paid"] < m["amount"]]
    return {"milestones": milestones_, "next_due_at": min(due) if due else None}


def _falls_due(contract, trigger, at):
    return [{**m, "due_at": m["due_at"] or (at + dt.timedelta(days=m["due_days"]))}
            if m["trigger"] == trigger else m for m in contract["milestones"]]


def sign(contract, link, name, address, pdf_sha256, now, *, countersign_required=False):
    """The customer's signature through the contract's link: typed name, time, source
    address and the SHA-256 of the exact PDF they signed are recorded."""
    if link["contract_id"] != contract["_id"]:
        raise LinkRefused("This link is for another contract.", kind="other_contract")
    signature = contract.get("signature") or {}
    if signature.get("link_id") == link["link_id"]:
        raise LinkUsed(f"This link was used already: signed at {signature['at'].isoformat()}.",
                       kind="used")
    if link["link_id"] != contract.get("link_id"):
        raise LinkRefused("This link was replaced by a newer one.", kind="replaced")
    _require(contract, UNSIGNED, doing="signed")
    if not (name or "").strip():
        raise Invalid("Type your name to sign.", errors={"name": ["Required to sign."]})
    record = {"name": name.strip(), "at": now, "address": address, "pdf_sha256": pdf_sha256,
              "link_id": link["link_id"]}
    change = {"signature": record, "status": SIGNED, "updated_at": now}
    events = []
    if not countersign_required:
        change.update(status=EXECUTED, **_schedule(_falls_due(contract, ON_SIGNING, now)))
        events.append(_signed_event(contract, record))
    return Change(set=change, events=events, actor=f"customer:{link['link_id']}")


def _signed_event(contract, signature):
    return ("contract.signed", {**_ref(contract), "signed_at": signature["at"],
                                "pdf_sha256": signature["pdf_sha256"]})


def countersign(contract, who, now):
    """Our signature after the customer's: the contract is executed (contract.signed)."""
    _require(contract, SIGNED, doing="countersigned")
    return Change(set={"countersignature": {"by": who, "at": now}, "status": EXECUTED,
                       **_schedule(_falls_due(contract, ON_SIGNING, now)), "updated_at": now},
                  events=[_signed_event(contract, {**contract["signature"]})], actor=who)


def delivery_accepted(contract, accepted_at, now):
    """delivery.accepted: the milestones that wait for it fall due (None when none do or
    they already are)."""
    if contract["status"] == VOIDED:
        return None
    after = _falls_due(contract, ON_DELIVERY, accepted_at)
    if after == contract["milestones"]:
        return None
    return Change(set={**_schedule(after), "updated_at": now}, actor="system:quotes")


def _fill(milestones_, paid_total):
    left, out = paid_total, []
    for m in milestones_:
        paid = min(m["amount"], left)
        left -= paid
        out.append({**m, "paid": paid})
    return out


def record_payment(contract, payment, now, *, actor=None):
    """A payment (idempotent by its id, from the Idempotency-Key). Returns None when this
    very payment was recorded already; Conflict when the key came with another body or the
    payment would exceed what is outstanding."""
    # kept to the millisecond, as MongoDB keeps times, so a retry compares equal
    received = payment["received_at"]
    try:
        amount = in_currency(payment["amount"], contract["currency"])
    except ValueError as exc:
        raise Invalid(str(exc), errors={"amount": [str(exc)]}) from None
    payment = {**payment, "amount": amount, "received_at": received.replace(
        microsecond=received.microsecond // 1000 * 1000)}
    same = [p for p in contract["payments"] if p["payment_id"] == payment["payment_id"]]
    if same:
        kept = {k: same[0][k] for k in ("amount", "method", "reference", "received_at")}
        given = {k: payment[k] for k in kept}
        if kept != given:
            raise Conflict("This Idempotency-Key was used for another payment.",
                           payment_id=payment["payment_id"])
        return None
    _require(contract, EXECUTED, doing="paid (it is not signed)")
    if payment["received_at"] > now:
        raise Invalid("A payment is recorded once received.",
                      errors={"received_at": ["Must not be in the future."]})
    outstanding = contract["amount"] - contract["paid_total"]
    if payment["amount"] > outstanding:
        raise Conflict(f"Over-payment: {outstanding} {contract['currency']} is outstanding.",
                       outstanding=outstanding, reason="over_payment")
    paid_total = contract["paid_total"] + payment["amount"]
    record = {**payment, "recorded_at": now, "recorded_by": actor}
    change = {"paid_total": paid_total, "updated_at": now,
              **_schedule(_fill(contract["milestones"], paid_total))}
    events = [("payment.received", {
        **_ref(contract), "payment_id": payment["payment_id"], "paid": payment["amount"],
        "paid_total": paid_total, "method": payment["method"],
        "received_at": payment["received_at"], "first": not contract["payments"]})]
    if paid_total == contract["amount"]:
        change["fully_paid_at"] = now
        events.append(("contract.fully_paid", {**_ref(contract), "paid_at": now}))
    return Change(set=change, push={"payments": record}, events=events, actor=actor)


def void_for_lost_deal(contract, now):
    """deal.lost: a contract not yet executed is voided; an executed one stands (None)."""
    if contract["status"] not in (UNSIGNED, SIGNED):
        return None
    return Change(set={"status": VOIDED, "voided": {"at": now, "by": "system:quotes",
                                                    "reason": "deal lost"},
                       "updated_at": now},
                  events=[("contract.voided", {**_ref(contract), "reason": "deal lost",
                                               "voided_at": now})],
                  actor="system:quotes")


def overdue(contract, now):
    """Milestones due before `now` and not fully paid."""
    return [m for m in contract["milestones"]
            if m["due_at"] is not None and m["due_at"] < now and m["paid"] < m["amount"]]


def overdue_totals(contracts_, now):
    """{currency: (milestones overdue, amount still unpaid on them)} over `contracts_`."""
    totals = {}
    for contract in contracts_:
        if contract["status"] == VOIDED:
            continue
        for m in overdue(contract, now):
            count, amount = totals.get(contract["currency"], (0, Decimal(0)))
            totals[contract["currency"]] = (count + 1, amount + m["amount"] - m["paid"])
    return totals
