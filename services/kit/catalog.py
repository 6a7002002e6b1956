"""The event catalog: one marshmallow schema per event type, shared by producers and consumers.

Producers dump and validate `data` with these schemas (unknown keys are refused); consumers
load with `unknown=EXCLUDE` so that adding a field is a compatible change.
`python -m kit.asyncapi` turns this module into docs/asyncapi.yaml.
"""
from marshmallow import Schema, fields, validate

from kit.fields import Country, Currency, Money, UtcDateTime

OPTIONAL = {"required": False, "allow_none": True, "load_default": None}


def _id(**kw):
    return fields.String(required=True, validate=validate.Length(min=1), **kw)


def _opt_str(**kw):
    return fields.String(**OPTIONAL, **kw)


LEAD_STATUSES = ("new", "contacted", "qualified", "disqualified", "converted", "nurture")


def _status():
    return fields.String(**OPTIONAL, validate=validate.OneOf(LEAD_STATUSES), metadata={
        "description": "the lead's status after this event (its highest-sequence event says "
                       "the lead's status now); always set by producers, null only in events "
                       "published before it was added"})


# --- leads -----------------------------------------------------------------------------------


class LeadCreated(Schema):
    """A lead was captured (form, import, API, e-mail, referral, event, ads)."""

    lead_id = _id()
    name = fields.String(required=True)
    company = _opt_str()
    email = _opt_str()
    phone = _opt_str(metadata={"description": "E.164"})
    country = Country(**OPTIONAL)
    region = _opt_str()
    source = fields.String(required=True)
    utm = fields.Dict(keys=fields.String(), values=fields.String(), **OPTIONAL)
    score = fields.Integer(required=True)
    grade = fields.String(required=True, validate=validate.OneOf("ABCD"))
    owner_id = _opt_str()
    created_at = UtcDateTime(required=True)
    status = _status()


class LeadAssigned(Schema):
    """A lead got an owner (rules, fallback queue, manager's reassignment or SLA)."""

    lead_id = _id()
    owner_id = _opt_str(metadata={"description": "null when the lead went to a queue"})
    queue = _opt_str()
    previous_owner_id = _opt_str()
    team = _opt_str()
    rule = fields.String(required=True, metadata={"description": "why: rule name or 'manual'"})
    status = _status()
    historical = fields.Boolean(**OPTIONAL, metadata={
        "description": "true when an admin's historical import loaded the lead: the "
                       "assignment was made back then, so nobody needs telling now; "
                       "absent otherwise"})


class LeadContacted(Schema):
    """A lead was answered (first call, e-mail or meeting) or moved to `contacted`; see `status`.

    An answer leaves the status as it is (a new lead stays new). `contacted_at` and
    `first_response_seconds` are always those of the first response."""

    lead_id = _id()
    owner_id = _opt_str()
    source = fields.String(required=True)
    created_at = UtcDateTime(required=True)
    contacted_at = UtcDateTime(required=True)
    first_response_seconds = fields.Float(required=True, validate=validate.Range(min=0))
    status = _status()


class LeadQualified(Schema):
    lead_id = _id()
    owner_id = _opt_str()
    source = fields.String(required=True)
    score = fields.Integer(required=True)
    grade = fields.String(required=True, validate=validate.OneOf("ABCD"))
    status = _status()
    qualified_at = UtcDateTime(**OPTIONAL, metadata={
        "description": "when it was qualified (a historical import's past time; the "
                       "envelope's time is when the event was emitted); null only in "
                       "events published before it was added"})


class LeadDisqualified(Schema):
    lead_id = _id()
    owner_id = _opt_str()
    source = fields.String(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1), metadata={
        "description": "a key of the disqualify picklist (free text in older events)"})
    reason_text = _opt_str(metadata={"description": "the words for reason other"})
    status = _status()


class LeadConverted(Schema):
    """A qualified lead became a deal: everything the deals service needs to open one."""

    lead_id = _id()
    owner_id = _opt_str()
    name = fields.String(required=True)
    company = _opt_str()
    email = _opt_str()
    phone = _opt_str()
    country = Country(**OPTIONAL)
    source = fields.String(required=True)
    amount = Money(**OPTIONAL)
    currency = Currency(**OPTIONAL)
    created_at = UtcDateTime(required=True)
    converted_at = UtcDateTime(required=True)
    pipeline_id = _opt_str(metadata={"description": "the deal pipeline the conversion asks "
                                     "for; null: the deals service's default"})
    status = _status()
    account_id = _opt_str(metadata={"description": "the account the conversion created or "
                                    "linked (null only in events from before accounts)"})
    contact_id = _opt_str(metadata={"description": "the contact, likewise"})


class LeadFollowupDue(Schema):
    lead_id = _id()
    task_id = _id()
    owner_id = _opt_str()
    due_at = UtcDateTime(required=True)
    note = _opt_str()


class LeadResponseOverdue(Schema):
    lead_id = _id()
    owner_id = _opt_str()
    created_at = UtcDateTime(required=True)
    overdue_minutes = fields.Integer(required=True)
    reassigned_to = _opt_str()
    status = _status()


class LeadErased(Schema):
    """An admin erased the lead's personal data on request: drop what you copied from it
    (contact data). Carries the id and status only, never what was erased."""

    lead_id = _id()
    status = _status()


# --- CRM records (issue 14) -------------------------------------------------------------------


class LeadUpdated(Schema):
    """A rep edited the lead (PATCH): which fields changed, never their values."""

    lead_id = _id()
    owner_id = _opt_str()
    changed = fields.List(fields.String(), required=True)
    score = fields.Integer(required=True)
    grade = fields.String(required=True, validate=validate.OneOf("ABCD"))
    status = _status()


class LeadRecycled(Schema):
    """A disqualified or unconverted lead went back into nurture."""

    lead_id = _id()
    owner_id = _opt_str()
    source = fields.String(required=True)
    from_status = fields.String(required=True, validate=validate.OneOf(LEAD_STATUSES))
    reason = fields.String(required=True, validate=validate.Length(min=1))
    recycled_at = UtcDateTime(required=True)
    status = _status()


class AccountCreated(Schema):
    """An account was created: by hand, or by a conversion (lead_id) matching none."""

    account_id = _id()
    name = fields.String(required=True)
    domain = _opt_str()
    owner_id = _opt_str()
    lead_id = _opt_str()
    created_at = UtcDateTime(required=True)


class AccountMerged(Schema):
    """A duplicate account was folded into another; its contacts and leads moved there."""

    account_id = _id()
    into_account_id = _id()


class ContactCreated(Schema):
    """A person at an account: by hand, or a converted lead's (lead_id)."""

    contact_id = _id()
    account_id = _id()
    lead_id = _opt_str()
    owner_id = _opt_str()
    created_at = UtcDateTime(required=True)


class AccountUpdated(Schema):
    """An account was edited (PATCH: its custom fields): which fields, never their values."""

    account_id = _id()
    owner_id = _opt_str()
    changed = fields.List(fields.String(), required=True)


class ContactUpdated(Schema):
    """A contact was edited (PATCH: title, custom fields): which fields, never the values."""

    contact_id = _id()
    account_id = _id()
    owner_id = _opt_str()
    changed = fields.List(fields.String(), required=True)


CRM_LEAD_EVENTS = {
    "lead.updated": LeadUpdated,
    "lead.recycled": LeadRecycled,
    "account.created": AccountCreated,
    "account.merged": AccountMerged,
    "contact.created": ContactCreated,
    "account.updated": AccountUpdated,
    "contact.updated": ContactUpdated,
}


class DealActivityLogged(Schema):
    """A call, e-mail, meeting or note was logged on a deal (subject: the activity)."""

    deal_id = _id()
    activity_id = _id()
    type = fields.String(required=True)
    pipeline_id = _id()
    stage = fields.String(required=True)
    owner_id = _opt_str()
    at = UtcDateTime(required=True)


class DealTaskDue(Schema):
    """A deal's open task fell due (once; subject: the task)."""

    deal_id = _id()
    task_id = _id()
    owner_id = _opt_str()
    due_at = UtcDateTime(required=True)
    title = _opt_str()


CRM_DEAL_EVENTS = {
    "deal.activity_logged": DealActivityLogged,
    "deal.task_due": DealTaskDue,
}


# --- deals -----------------------------------------------------------------------------------


class DealCreated(Schema):
    deal_id = _id()
    pipeline_id = _id()
    stage = fields.String(required=True)
    name = fields.String(required=True)
    owner_id = _opt_str()
    amount = Money(**OPTIONAL)
    currency = Currency(**OPTIONAL)
    probability = fields.Integer(required=True, validate=validate.Range(0, 100))
    expected_close = fields.Date(**OPTIONAL)
    lead_id = _opt_str()
    origin = fields.String(load_default="direct", validate=validate.OneOf(("lead", "direct")),
                           metadata={"description": "lead: opened (or adopted) by the lead's "
                                     "conversion; direct: opened on its own"})
    created_at = UtcDateTime(required=True)


class DealStageChanged(Schema):
    deal_id = _id()
    pipeline_id = _id()
    from_stage = fields.String(required=True, data_key="from")
    to_stage = fields.String(required=True, data_key="to")
    probability = fields.Integer(required=True, validate=validate.Range(0, 100))
    amount = Money(**OPTIONAL)
    currency = Currency(**OPTIONAL)
    owner_id = _opt_str()
    expected_close = fields.Date(**OPTIONAL)
    changed_at = UtcDateTime(required=True)


class DealUpdated(Schema):
    """An open deal's fields changed, or its lead's conversion adopted it; see `changed`.

    When lead.converted reaches a deal opened with its lead_id before, `origin` becomes
    "lead" and the conversion's amount applies if the deal was open without one (else the
    deal's history records it as not applied)."""

    deal_id = _id()
    pipeline_id = _id()
    stage = fields.String(required=True)
    changed = fields.List(fields.String(), required=True)
    amount = Money(**OPTIONAL)
    currency = Currency(**OPTIONAL)
    probability = fields.Integer(required=True, validate=validate.Range(0, 100))
    owner_id = _opt_str()
    expected_close = fields.Date(**OPTIONAL)
    origin = fields.String(load_default="direct", validate=validate.OneOf(("lead", "direct")),
                           metadata={"description": "lead: opened (or adopted) by the lead's "
                                     "conversion; direct: opened on its own"})


class DealWon(Schema):
    deal_id = _id()
    pipeline_id = _id()
    from_stage = fields.String(required=True)
    amount = Money(**OPTIONAL)
    currency = Currency(**OPTIONAL)
    owner_id = _opt_str()
    lead_id = _opt_str()
    account = _opt_str()
    created_at = UtcDateTime(required=True)
    won_at = UtcDateTime(required=True)


class DealLost(Schema):
    deal_id = _id()
    pipeline_id = _id()
    from_stage = fields.String(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1), metadata={
        "description": "a key of the pipeline's lost reasons (free text in events from "
                       "before the picklist)"})
    reason_text = _opt_str(metadata={"description": "the words for reason other"})
    amount = Money(**OPTIONAL)
    currency = Currency(**OPTIONAL)
    owner_id = _opt_str()
    created_at = UtcDateTime(required=True)
    lost_at = UtcDateTime(required=True)


class DealStalled(Schema):
    deal_id = _id()
    pipeline_id = _id()
    stage = fields.String(required=True)
    owner_id = _opt_str()
    idle_days = fields.Integer(required=True)
    last_activity_at = UtcDateTime(required=True)


# --- quotes ----------------------------------------------------------------------------------


class _Quote(Schema):
    quote_id = _id()
    deal_id = _id()
    version = fields.Integer(required=True, validate=validate.Range(min=1))


class QuoteCreated(_Quote):
    number = fields.String(required=True)
    total = Money(required=True)
    currency = Currency(required=True)
    owner_id = _opt_str()


class QuoteSubmitted(_Quote):
    total = Money(required=True)
    currency = Currency(required=True)
    requires_approval = fields.Boolean(required=True)
    submitted_at = UtcDateTime(required=True)
    discount_percent = Money(places=2, **OPTIONAL, metadata={
        "description": "the whole discount as a percent of the subtotal"})


class QuoteApproved(_Quote):
    approver_id = _opt_str()
    submitted_at = UtcDateTime(required=True)
    approved_at = UtcDateTime(required=True)


class QuoteRejected(_Quote):
    approver_id = _opt_str()
    reason = fields.String(required=True)
    submitted_at = UtcDateTime(required=True)
    rejected_at = UtcDateTime(required=True)


class QuoteSent(_Quote):
    total = Money(required=True)
    currency = Currency(required=True)
    valid_until = UtcDateTime(required=True)


class QuoteAccepted(_Quote):
    total = Money(required=True)
    currency = Currency(required=True)
    accepted_at = UtcDateTime(required=True)


class QuoteDeclined(_Quote):
    reason = _opt_str()


class QuoteExpired(_Quote):
    valid_until = UtcDateTime(required=True)


class QuoteVoided(_Quote):
    """An open quote was voided (by a person, or because its deal was lost)."""

    reason = fields.String(required=True)
    voided_at = UtcDateTime(required=True)


class _Contract(Schema):
    contract_id = _id()
    quote_id = _id()
    deal_id = _id()
    amount = Money(required=True)
    currency = Currency(required=True)


class ContractCreated(_Contract):
    """An accepted quote became a contract, with its payment schedule."""

    number = fields.String(required=True)
    created_at = UtcDateTime(required=True)


class ContractSent(_Contract):
    """A new signing link was made for the customer, on request (POST .../send); the links
    sent before it stop working. The link itself is not in the event: notify asks quotes
    for the open one (GET /api/v1/contracts/{contract_id}/link)."""

    number = fields.String(required=True)
    link_expires_at = UtcDateTime(required=True)
    sent_at = UtcDateTime(required=True)


class ContractSigned(_Contract):
    """The customer signed through the contract's link (typed name, time, address and the
    SHA-256 of the exact PDF are kept with the contract, not in the event)."""

    signed_at = UtcDateTime(required=True)
    pdf_sha256 = fields.String(required=True, validate=validate.Length(equal=64))


class ContractVoided(_Contract):
    reason = fields.String(required=True)
    voided_at = UtcDateTime(required=True)


class PaymentReceived(_Contract):
    payment_id = _id()
    paid = Money(required=True, metadata={"description": "this payment"})
    paid_total = Money(required=True, metadata={"description": "all payments so far"})
    method = fields.String(required=True)
    received_at = UtcDateTime(required=True)
    first = fields.Boolean(required=True, metadata={"description": "the contract's first"})


class ContractFullyPaid(_Contract):
    paid_at = UtcDateTime(required=True)


# --- support ---------------------------------------------------------------------------------

PRIORITIES = ("low", "normal", "high", "urgent")


def _priority():
    return fields.String(required=True, validate=validate.OneOf(PRIORITIES))


class TicketOpened(Schema):
    ticket_id = _id()
    account = _opt_str()
    deal_id = _opt_str()
    priority = _priority()
    channel = fields.String(required=True)
    subject = fields.String(required=True)
    opened_at = UtcDateTime(required=True)
    first_response_due = UtcDateTime(**OPTIONAL)
    resolution_due = UtcDateTime(**OPTIONAL)
    category = _opt_str()
    tier = _opt_str()


class TicketAssigned(Schema):
    ticket_id = _id()
    agent_id = _opt_str()
    priority = _priority()
    category = _opt_str()
    previous_agent_id = _opt_str()
    rule = _opt_str(metadata={"description": "dispatch (skill, least loaded) or manual"})


class TicketFirstResponded(Schema):
    ticket_id = _id()
    agent_id = _opt_str()
    priority = _priority()
    opened_at = UtcDateTime(required=True)
    responded_at = UtcDateTime(required=True)
    first_response_seconds = fields.Float(required=True, validate=validate.Range(min=0))
    category = _opt_str()
    sla_met = fields.Boolean(**OPTIONAL, metadata={
        "description": "within the first-response target (working time, pauses excluded)"})


TICKET_STATUSES = ("new", "open", "pending", "resolved", "closed")


class TicketStatusChanged(Schema):
    ticket_id = _id()
    priority = _priority()
    category = _opt_str()
    from_status = fields.String(required=True, data_key="from",
                                validate=validate.OneOf(TICKET_STATUSES))
    to_status = fields.String(required=True, data_key="to",
                              validate=validate.OneOf(TICKET_STATUSES))
    agent_id = _opt_str()
    changed_at = UtcDateTime(required=True)


class TicketResolved(Schema):
    ticket_id = _id()
    priority = _priority()
    opened_at = UtcDateTime(required=True)
    resolved_at = UtcDateTime(required=True)
    resolution_seconds = fields.Float(required=True, validate=validate.Range(min=0))
    category = _opt_str()
    agent_id = _opt_str()
    resolution = fields.Integer(**OPTIONAL, metadata={
        "description": "1 for the first resolution, 2 after one reopen..."})
    sla_met = fields.Boolean(**OPTIONAL, metadata={
        "description": "within the resolution target (working time, pauses excluded)"})


class TicketReopened(Schema):
    ticket_id = _id()
    priority = _priority()
    reason = _opt_str()
    category = _opt_str()
    reopened_at = UtcDateTime(**OPTIONAL)


SLA_KINDS = ("first_response", "resolution")


class TicketSlaWarning(Schema):
    """A share of an SLA target (SLA.warning_fraction) is used up; once per clock."""

    ticket_id = _id()
    priority = _priority()
    category = _opt_str()
    agent_id = _opt_str()
    kind = fields.String(required=True, validate=validate.OneOf(SLA_KINDS))
    due_at = UtcDateTime(required=True)
    warned_at = UtcDateTime(required=True)


class TicketSlaBreached(Schema):
    ticket_id = _id()
    priority = _priority()
    kind = fields.String(required=True, validate=validate.OneOf(SLA_KINDS))
    due_at = UtcDateTime(required=True)
    breached_at = UtcDateTime(required=True)
    category = _opt_str()
    agent_id = _opt_str()


class TicketRated(Schema):
    ticket_id = _id()
    priority = _priority()
    score = fields.Integer(required=True, validate=validate.Range(1, 5))
    comment = _opt_str()
    category = _opt_str()
    agent_id = _opt_str()
    resolution = fields.Integer(**OPTIONAL)
    rated_at = UtcDateTime(**OPTIONAL)


class DeliveryOpened(Schema):
    """deal.won opened the deal's delivery project (one per deal)."""

    delivery_id = _id()
    deal_id = _id()
    pipeline_id = _opt_str()
    account = _opt_str()
    owner_id = _opt_str()
    template = fields.String(required=True)
    steps = fields.List(fields.String(), required=True)
    won_at = UtcDateTime(**OPTIONAL)
    due_at = UtcDateTime(**OPTIONAL)
    opened_at = UtcDateTime(required=True)


class DeliveryStepCompleted(Schema):
    delivery_id = _id()
    deal_id = _id()
    step = fields.String(required=True)
    due_at = UtcDateTime(**OPTIONAL)
    completed_at = UtcDateTime(required=True)
    overdue = fields.Boolean(required=True)


class DeliveryAccepted(Schema):
    """The customer signed the acceptance step: payment "on delivery acceptance" is due."""

    delivery_id = _id()
    deal_id = _id()
    account = _opt_str()
    won_at = UtcDateTime(**OPTIONAL)
    accepted_at = UtcDateTime(required=True)


# --- notify ----------------------------------------------------------------------------------


class _Notification(Schema):
    notification_id = _id(metadata={"description": "event id|rule|recipient|channel"})
    event_id = _id(metadata={"description": "the event that caused it"})
    event_type = fields.String(required=True)
    rule = fields.String(required=True)
    recipient = fields.String(required=True, metadata={
        "description": "person:<sub>, customer:<id> or channel:<team>; no address"})
    channel = fields.String(required=True, validate=validate.OneOf(
        ("email", "sms", "dingtalk", "wecom")))
    attempts = fields.Integer(required=True, validate=validate.Range(min=1))


class NotificationSent(_Notification):
    sent_at = UtcDateTime(required=True)


class NotificationFailed(_Notification):
    """Failed for good: a permanent failure, or transient ones until the retries ran out."""

    reason = fields.String(required=True)
    failed_at = UtcDateTime(required=True)


CATALOG = {
    "leads": {
        "lead.created": LeadCreated,
        "lead.assigned": LeadAssigned,
        "lead.contacted": LeadContacted,
        "lead.qualified": LeadQualified,
        "lead.disqualified": LeadDisqualified,
        "lead.converted": LeadConverted,
        "lead.followup_due": LeadFollowupDue,
        "lead.response_overdue": LeadResponseOverdue,
        "lead.erased": LeadErased,
        **CRM_LEAD_EVENTS,
    },
    "deals": {
        "deal.created": DealCreated,
        "deal.stage_changed": DealStageChanged,
        "deal.updated": DealUpdated,
        "deal.won": DealWon,
        "deal.lost": DealLost,
        "deal.stalled": DealStalled,
        **CRM_DEAL_EVENTS,
    },
    "quotes": {
        "quote.created": QuoteCreated,
        "quote.submitted": QuoteSubmitted,
        "quote.approved": QuoteApproved,
        "quote.rejected": QuoteRejected,
        "quote.sent": QuoteSent,
        "quote.accepted": QuoteAccepted,
        "quote.declined": QuoteDeclined,
        "quote.expired": QuoteExpired,
        "quote.voided": QuoteVoided,
        "contract.created": ContractCreated,
        "contract.sent": ContractSent,
        "contract.signed": ContractSigned,
        "contract.voided": ContractVoided,
        "payment.received": PaymentReceived,
        "contract.fully_paid": ContractFullyPaid,
    },
    "support": {
        "ticket.opened": TicketOpened,
        "ticket.assigned": TicketAssigned,
        "ticket.first_responded": TicketFirstResponded,
        "ticket.resolved": TicketResolved,
        "ticket.reopened": TicketReopened,
        "ticket.sla_breached": TicketSlaBreached,
        "ticket.rated": TicketRated,
        "ticket.status_changed": TicketStatusChanged,
        "ticket.sla_warning": TicketSlaWarning,
        "delivery.opened": DeliveryOpened,
        "delivery.step_completed": DeliveryStepCompleted,
        "delivery.accepted": DeliveryAccepted,
    },
    "notify": {
        "notification.sent": NotificationSent,
        "notification.failed": NotificationFailed,
    },
}

# --- webhooks (issue 16) ---------------------------------------------------------------------


class WebhookSubscriptionDisabled(Schema):
    """A webhook subscription was turned off: its endpoint failed a run of attempts in a
    row or for too long, answered 410 Gone, or an admin turned it off. No URL or secret
    (events carry none): the subscription id is looked up in the webhooks admin API."""

    subscription_id = _id()
    reason = fields.String(required=True)
    automatic = fields.Boolean(required=True, metadata={
        "description": "true when the failure rules turned it off, false for an admin"})
    failures_in_a_row = fields.Integer(required=True, validate=validate.Range(min=0))
    failing_since = UtcDateTime(**OPTIONAL)
    disabled_at = UtcDateTime(required=True)


CATALOG["webhooks"] = {"webhook.subscription_disabled": WebhookSubscriptionDisabled}

EVENT_TYPES = {etype: schema for events in CATALOG.values() for etype, schema in events.items()}
PRODUCER = {etype: service for service, events in CATALOG.items() for etype in events}
