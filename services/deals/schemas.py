"""Marshmallow schemas of the deals HTTP API (bodies, queries, responses)."""
from marshmallow import (
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from deals import forecast as F
from deals import pipelines as P
from deals import search as DS
from kit.fields import (
    Currency,
    CurrencyAmounts,
    CustomFields,
    Integer,
    Money,
    UtcDateTime,
    validate_not_blank,
)

KEY = validate.Regexp(P.KEY, error="Use lower-case letters, digits and '_' (max 64).")
STATUSES = ("open", P.WON, P.LOST)


ID = validate.Length(min=1, max=100)


def _keys():
    return fields.String(validate=KEY)


def _key_list(**kw):
    return fields.List(_keys(), validate=validate.Length(max=100), **kw)


def _text(**kw):
    return fields.String(validate=validate.Length(max=2000), **kw)


# --- pipelines -------------------------------------------------------------------------------


class StageSchema(Schema):
    key = fields.String(required=True, validate=KEY)
    name = fields.String(required=True, validate=[validate_not_blank, validate.Length(max=200)])
    probability = Integer(required=True, validate=validate.Range(0, 100))
    required_fields = _key_list(load_default=list)
    required_checklist = _key_list(load_default=list)
    stall_days = Integer(allow_none=True, load_default=None,
                         validate=validate.Range(min=0, max=3650),
                                metadata={"description": "idle days until stalled; null: never"})
    terminal = fields.Boolean(dump_only=True)


class ReasonLabels(Schema):
    en = fields.String(required=True, validate=validate.Length(min=1, max=200))
    zh_cn = fields.String(required=True, data_key="zh-CN",
                          validate=validate.Length(min=1, max=200))


class ReasonIn(Schema):
    key = fields.String(required=True, validate=KEY)
    labels = fields.Nested(ReasonLabels, required=True)


class PipelineIn(Schema):
    name = fields.String(required=True, validate=[validate_not_blank, validate.Length(max=200)])
    stages = fields.List(fields.Nested(StageSchema), required=True,
                         validate=validate.Length(min=3, max=P.MAX_STAGES))
    lost_reasons = fields.List(fields.Nested(ReasonIn), load_default=None, allow_none=True,
                               validate=validate.Length(min=1, max=P.MAX_REASONS),
                               metadata={"description": "the lost-reason picklist (default: "
                                         "the standard one); other is always offered"})

    @validates_schema
    def stage_rules(self, data, **kwargs):
        errors = P.validate_stages(data["stages"])
        if errors:
            raise ValidationError(errors)


class PipelineOut(Schema):
    id = fields.String(attribute="_id")
    name = fields.String()
    stages = fields.List(fields.Nested(StageSchema))
    checklist_items = fields.Method("_items")
    lost_reasons = fields.Method("_reasons", metadata={
        "description": "the picklist of POST /deals/{id}/lost: [{key, labels}]"})
    version = fields.Integer()
    created_at = UtcDateTime()
    updated_at = UtcDateTime()

    def _items(self, obj):
        return P.checklist_items(obj)

    def _reasons(self, obj):
        return P.lost_reasons(obj)


class PipelineList(Schema):
    items = fields.List(fields.Nested(PipelineOut))


# --- deals -----------------------------------------------------------------------------------


class ContactSchema(Schema):
    name = fields.String(allow_none=True, validate=validate.Length(max=200))
    email = fields.Email(allow_none=True)
    phone = fields.String(allow_none=True, validate=validate.Length(max=40))


class DealIn(CurrencyAmounts):
    name = fields.String(required=True, validate=[validate_not_blank, validate.Length(max=200)])
    pipeline_id = fields.String(load_default=P.DEFAULT_PIPELINE_ID, validate=ID)
    stage = fields.String(load_default=None, validate=KEY,
                          metadata={"description": "default: the first open stage"})
    account = _text(load_default=None, allow_none=True)
    contact = fields.Nested(ContactSchema, load_default=None, allow_none=True)
    owner_id = fields.String(load_default=None, allow_none=True, validate=ID)
    amount = Money(load_default=None, allow_none=True)
    currency = Currency(load_default=None, allow_none=True)
    expected_close = fields.Date(load_default=None, allow_none=True)
    lead_id = fields.String(load_default=None, allow_none=True, validate=ID,
                            metadata={"description": "one deal per lead"})
    needs_summary = _text(load_default=None, allow_none=True)
    custom = CustomFields(load_default=dict)
    checklist = _key_list(load_default=list,
                          metadata={"description": "checklist items already ticked"})


class DealPatch(CurrencyAmounts):
    amount_alone = True  # the deal's currency stays; the domain checks the pair
    name = fields.String(validate=[validate_not_blank, validate.Length(max=200)])
    account = _text(allow_none=True)
    contact = fields.Nested(ContactSchema, allow_none=True)
    owner_id = fields.String(allow_none=True, validate=ID)
    amount = Money(allow_none=True)
    currency = Currency(allow_none=True)
    expected_close = fields.Date(allow_none=True)
    probability = Integer(validate=validate.Range(0, 100))
    needs_summary = _text(allow_none=True)
    custom = CustomFields(metadata={"description": "merged; null removes a field"})
    checklist = fields.Dict(keys=_keys(), values=fields.Boolean(truthy={True}, falsy={False}),
                            metadata={"description": "item -> ticked"})


class StageMove(Schema):
    stage = fields.String(required=True, validate=KEY)


class LostIn(Schema):
    reason = fields.String(required=True, validate=[validate_not_blank,
                                                    validate.Length(max=500)], metadata={
        "description": "a key of the pipeline's lost_reasons; other needs reason_text; "
                       "other words are taken as other with them as the text"})
    reason_text = fields.String(load_default=None, allow_none=True,
                                validate=validate.Length(max=500))


class ReopenIn(Schema):
    stage = fields.String(load_default=None, validate=KEY,
                          metadata={"description": "default: the stage it was closed from"})


class AcceptedQuoteOut(Schema):
    quote_id = fields.String()
    version = fields.Integer()
    total = Money()
    currency = fields.String()
    accepted_at = UtcDateTime()


class ContractSignedOut(Schema):
    contract_id = fields.String()
    signed_at = UtcDateTime()


class FirstPaymentOut(Schema):
    payment_id = fields.String()
    amount = Money()
    currency = fields.String()
    received_at = UtcDateTime()


class TransitionOut(Schema):
    from_stage = fields.String(data_key="from", attribute="from", allow_none=True)
    to = fields.String()
    at = UtcDateTime()
    by = fields.String(allow_none=True)
    reason = fields.String()
    changes = fields.Dict(keys=fields.String(), values=fields.Dict(), metadata={
        "description": "field edits: {field: {from, to}} (amount, currency, owner_id)"})
    event = fields.String(metadata={"description": "the event that caused the entry"})
    lead_id = fields.String()
    not_applied = fields.Dict(metadata={"description": "a lead conversion's amount the "
                                        "deal did not take (it had one, or was closed)"})
    historical = fields.Boolean(metadata={"description": "recorded later by an admin "
                                          "(POST /api/v1/deals/history), at recorded_at"})
    recorded_at = UtcDateTime()
    seq = fields.Integer(metadata={"description": "the entry's number in the deal's history "
                                   "(1 is its creation)"})


class DealOut(Schema):
    id = fields.String(attribute="_id")
    name = fields.String()
    account = fields.String(allow_none=True)
    contact = fields.Nested(ContactSchema, allow_none=True)
    owner_id = fields.String(allow_none=True)
    team = fields.String(allow_none=True, metadata={
        "description": "the owner's team when the deal got its owner"})
    amount = Money(allow_none=True)
    currency = fields.String(allow_none=True)
    expected_close = fields.Date(allow_none=True)
    pipeline_id = fields.String()
    stage = fields.String()
    status = fields.String()
    probability = fields.Integer()
    lead_id = fields.String(allow_none=True)
    account_id = fields.String(allow_none=True, metadata={
        "description": "the leads service's account (from the lead's conversion)"})
    contact_id = fields.String(allow_none=True)
    origin = fields.String(dump_default="direct", metadata={
        "description": "lead: opened or adopted by the lead's conversion; direct: not"})
    needs_summary = fields.String(allow_none=True)
    custom = fields.Dict()
    checklist = fields.List(fields.String())
    accepted_quote = fields.Nested(AcceptedQuoteOut, allow_none=True)
    contract_signed = fields.Nested(ContractSignedOut, allow_none=True)
    first_payment = fields.Nested(FirstPaymentOut, allow_none=True)
    lost_reason = fields.String(allow_none=True, metadata={"description": "a reason key"})
    lost_reason_text = fields.String(allow_none=True)
    history = fields.List(fields.Nested(TransitionOut), metadata={
        "description": "the deal's recent history, oldest first (the whole of it pages at "
                       "GET /api/v1/deals/{id}/history)"})
    history_count = fields.Integer(metadata={"description": "entries in the whole history"})
    version = fields.Integer()
    created_at = UtcDateTime()
    updated_at = UtcDateTime()
    last_activity_at = UtcDateTime()
    stalled_at = UtcDateTime(allow_none=True)
    closed_at = UtcDateTime(allow_none=True)


class DealQuery(Schema):
    lead_id = fields.String()
    account_id = fields.String(metadata={"description": "the deals of one account (leads' "
                                                       "/api/v1/accounts)"})
    owner_id = fields.String()
    pipeline_id = fields.String()
    stage = fields.String()
    status = fields.String(validate=validate.OneOf(STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String()


class DealSearchQuery(Schema):
    q = fields.String(required=True, validate=validate.Length(min=1, max=200), metadata={
        "description": "the start of the deal's name or account (case, width and a "
                       "company's legal form do not matter)"})
    by = fields.String(load_default="any", validate=validate.OneOf(DS.BY))
    account_id = fields.String()
    owner_id = fields.String()
    pipeline_id = fields.String()
    stage = fields.String()
    status = fields.String(validate=validate.OneOf(STATUSES))
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 200))
    cursor = fields.String(validate=validate.Length(max=2000))


class DealPage(Schema):
    items = fields.List(fields.Nested(DealOut))
    next_cursor = fields.String(allow_none=True)


class HistoryQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(metadata={"description": "next_cursor of the previous page"})


class HistoryPage(Schema):
    """A deal's whole history, newest first, by cursor."""
    deal_id = fields.String()
    items = fields.List(fields.Nested(TransitionOut))
    next_cursor = fields.String(allow_none=True)


# --- history (admins) ------------------------------------------------------------------------


class HistoryFields(Schema):
    """What a recorded edit may set: what gates ask for besides amounts (which a lead's
    conversion brings)."""

    needs_summary = _text()
    expected_close = fields.Date()
    checklist = _key_list(metadata={"description": "items ticked"})


class HistoryStep(Schema):
    at = UtcDateTime(required=True, metadata={"description": "when it happened (RFC 3339 "
                                              "with an offset; not before the deal's last "
                                              "change, not in the future)"})
    action = fields.String(required=True, validate=validate.OneOf(
        ("update", "move", "won", "lost")))
    stage = fields.String(validate=KEY, metadata={"description": "move: the stage entered"})
    reason = fields.String(validate=[validate_not_blank, validate.Length(max=500)],
                           metadata={"description": "lost: why"})
    fields_ = fields.Nested(HistoryFields, data_key="fields", attribute="fields",
                            metadata={"description": "update: what it set"})


class HistoryItem(Schema):
    deal_id = fields.String(required=True, validate=ID, metadata={
        "description": "a deal's id, or lead:<lead id> for the deal its conversion opened"})
    version = Integer(required=True, validate=validate.Range(min=1, max=2**31), metadata={
        "description": "the version the steps apply to, as If-Match: a deal at another "
                       "version is left alone (so a repeated load adds nothing)"})
    steps = fields.List(fields.Nested(HistoryStep), required=True,
                        validate=validate.Length(min=1, max=20))


class HistoryIn(Schema):
    items = fields.List(fields.Nested(HistoryItem), required=True,
                        validate=validate.Length(min=1, max=500))


class HistoryOutcome(Schema):
    deal_id = fields.String()
    outcome = fields.String(metadata={"description": "applied, stale (another version: "
                                      "nothing written), not_found, refused (a rule or "
                                      "gate: nothing written)"})
    version = fields.Integer(allow_none=True)
    error = fields.Dict(allow_none=True)


class HistoryOut(Schema):
    items = fields.List(fields.Nested(HistoryOutcome))


# --- forecast --------------------------------------------------------------------------------


class ForecastQuery(Schema):
    period = fields.String(load_default="month", validate=validate.OneOf(F.PERIODS))
    pipeline_id = fields.String()
    owner_id = fields.String()
    currency = Currency()
    close_from = fields.Date(metadata={
        "description": "only deals expected to close on or after this day (read through an "
                       "index: a window reads its deals, not every open one); `unplaced` "
                       "then counts the window's deals without an amount or a currency"})
    close_to = fields.Date(metadata={"description": "...and on or before this day"})

    @validates_schema
    def _window(self, data, **kwargs):
        if data.get("close_from") and data.get("close_to") and \
                data["close_from"] > data["close_to"]:
            raise ValidationError("close_to comes before close_from.", "close_to")


class ForecastRow(Schema):
    period = fields.String()
    owner_id = fields.String(allow_none=True)
    currency = fields.String()
    deals = fields.Integer()
    weighted = Money(metadata={"description": "sum of amount x probability / 100"})
    best_case = Money(metadata={"description": "sum of amounts of open deals"})


class ForecastTotal(ForecastRow):
    class Meta:
        exclude = ("owner_id",)


class ForecastOut(Schema):
    period = fields.String()
    rows = fields.List(fields.Nested(ForecastRow))
    totals = fields.List(fields.Nested(ForecastTotal))
    unplaced = fields.Integer(metadata={"description": "open deals without amount, currency "
                                                      "or expected close"})
