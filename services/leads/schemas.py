"""Marshmallow schemas of the leads HTTP bodies, query strings and responses."""
from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from kit.fields import (
    Country,
    Currency,
    CurrencyAmounts,
    CustomFields,
    Integer,
    Money,
    UtcDateTime,
    validate_not_blank,
)
from leads import domain, search

SOURCES = ("web_form", "import", "api", "email", "referral", "event", "ads", "social",
           "partner", "chat", "phone", "other")
UTM_KEYS = ("source", "medium", "campaign", "term", "content")


def _opt_str(max_len, **kw):
    return fields.String(allow_none=True, load_default=None,
                         validate=validate.Length(max=max_len), **kw)


class Utm(Schema):
    class Meta:
        unknown = RAISE

    source = _opt_str(200)
    medium = _opt_str(200)
    campaign = _opt_str(200)
    term = _opt_str(200)
    content = _opt_str(200)

    @post_load
    def drop_empty(self, data, **kwargs):
        return {k: v.strip() for k, v in data.items() if v is not None and v.strip()}


class Email(fields.Email):
    """Normalised as dedup compares (case, surrounding spaces) before it is validated. A
    blank string is not an address (null is "no e-mail"): normalised to None and then
    validated, it raised TypeError, a 500."""

    def deserialize(self, value, attr=None, data=None, **kwargs):
        if isinstance(value, str):
            if not value.strip():
                raise self.make_error("invalid")
            value = domain.normalise_email(value)
        return super().deserialize(value, attr, data, **kwargs)


class LeadIn(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True,
                         validate=[validate.Length(min=1, max=200), validate_not_blank])
    company = _opt_str(200)
    email = Email(allow_none=True, load_default=None, validate=validate.Length(max=254))
    phone = _opt_str(40, metadata={"description": "any format; stored as E.164"})
    country = Country(allow_none=True, load_default=None)
    region = _opt_str(100)
    source = fields.String(load_default="api", validate=validate.OneOf(SOURCES))
    utm = fields.Nested(Utm, allow_none=True, load_default=None)
    custom = CustomFields(allow_none=True, load_default=None)

    @post_load
    def normalise(self, data, **kwargs):
        try:
            data["phone"] = domain.normalise_phone(data.get("phone"), data.get("country"))
        except ValueError as exc:
            raise ValidationError({"phone": [f"Not a valid phone number: {exc}"]}) from None
        for key in ("company", "region"):
            if data.get(key) is not None:
                data[key] = data[key].strip() or None
        return data


class LeadCreated(Schema):
    id = fields.String(required=True)


class DuplicateQuery(Schema):
    on_duplicate = fields.String(load_default="reject", validate=validate.OneOf(
        ("reject", "merge")))


class ActivityOut(Schema):
    id = fields.String()
    type = fields.String()
    at = UtcDateTime()
    actor = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    summary = fields.String(allow_none=True)
    duration_minutes = fields.Integer(allow_none=True)
    fields_ = fields.List(fields.String(), data_key="fields", attribute="fields")
    changes = fields.Dict(allow_none=True,
                          metadata={"description": "an edit's fields: {from, to} each"})
    recorded_at = UtcDateTime()


class LeadOut(Schema):
    id = fields.String(attribute="_id")
    version = fields.Integer()
    name = fields.String()
    company = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    country = fields.String(allow_none=True)
    region = fields.String(allow_none=True)
    source = fields.String()
    utm = fields.Dict()
    custom = fields.Dict()
    status = fields.String()
    reason = fields.String(allow_none=True)
    reason_text = fields.String(allow_none=True)
    score = fields.Integer()
    grade = fields.String()
    score_rules = fields.List(fields.String(), metadata={"description": "rules that fired"})
    owner_id = fields.String(allow_none=True)
    team = fields.String(allow_none=True)
    queue = fields.String(allow_none=True)
    created_at = UtcDateTime()
    updated_at = UtcDateTime()
    contacted_at = UtcDateTime(allow_none=True)
    first_response_seconds = fields.Float(allow_none=True)
    qualified_at = UtcDateTime(allow_none=True)
    converted_at = UtcDateTime(allow_none=True)
    amount = Money(allow_none=True)
    currency = fields.String(allow_none=True)
    account_id = fields.String(allow_none=True, metadata={
        "description": "its account: a known customer's, or the conversion's"})
    contact_id = fields.String(allow_none=True)
    recycled_at = UtcDateTime(allow_none=True)
    recycled_from = fields.String(allow_none=True)
    erased_at = UtcDateTime(attribute="erased.at", allow_none=True, metadata={
        "description": "when an admin erased the lead's personal data (null: never)"})


class LeadMerged(Schema):
    id = fields.String()
    merged = fields.Boolean()
    fields_ = fields.List(fields.String(), data_key="fields", attribute="fields")
    lead = fields.Nested(LeadOut)


class ListQuery(Schema):
    class Meta:
        unknown = RAISE

    status = fields.String(validate=validate.OneOf(domain.STATUSES))
    owner_id = fields.String(validate=validate.Length(min=1))
    source = fields.String(validate=validate.OneOf(SOURCES))
    grade = fields.String(validate=validate.OneOf("ABCD"))
    created_from = UtcDateTime()
    created_to = UtcDateTime()
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String()


class LeadPage(Schema):
    items = fields.List(fields.Nested(LeadOut))
    next_cursor = fields.String(allow_none=True)


class StatusIn(Schema):
    class Meta:
        unknown = RAISE

    status = fields.String(required=True, validate=validate.OneOf(domain.STATUSES))
    reason = _opt_str(500, metadata={"description": "to disqualify: a key of the "
                                     "DISQUALIFY.reasons picklist, or other with reason_text "
                                     "(other words are taken as other with them as the text)"})
    reason_text = _opt_str(500)


class ActivityIn(Schema):
    class Meta:
        unknown = RAISE

    type = fields.String(required=True, validate=validate.OneOf(domain.ACTIVITY_TYPES))
    at = UtcDateTime(load_default=None, allow_none=True)
    # no `actor`: the token's subject is the actor, and a body naming one is refused (400)
    outcome = _opt_str(100)
    summary = _opt_str(5000)
    duration_minutes = Integer(allow_none=True, load_default=None,
                               validate=validate.Range(min=0, max=24 * 60))


class ActivityAdded(Schema):
    activity = fields.Nested(ActivityOut)
    lead = fields.Nested(LeadOut)


class Timeline(Schema):
    lead_id = fields.String()
    activities = fields.List(fields.Nested(ActivityOut))


class ConvertIn(CurrencyAmounts):
    class Meta:
        unknown = RAISE

    amount = Money(allow_none=True, load_default=None)
    currency = Currency(allow_none=True, load_default=None)
    pipeline_id = fields.String(load_default=None, validate=validate.Length(min=1, max=100),
                                metadata={"description": "the deal pipeline to open the "
                                          "deal in (the deals service's default if absent "
                                          "or unknown)"})

    @validates_schema
    def currency_with_amount(self, data, **kwargs):
        if data.get("amount") is not None and data.get("currency") is None:
            raise ValidationError({"currency": ["Required with an amount."]})


class AssignIn(Schema):
    class Meta:
        unknown = RAISE

    owner_id = fields.String(allow_none=True, load_default=None,
                             validate=validate.Length(min=1, max=100))
    queue = fields.String(allow_none=True, load_default=None,
                          validate=validate.Length(min=1, max=100))
    team = fields.String(allow_none=True, load_default=None,
                         validate=validate.Length(min=1, max=100))

    @validates_schema
    def one_target(self, data, **kwargs):
        if (data.get("owner_id") is None) == (data.get("queue") is None):
            raise ValidationError({"owner_id": ["Give exactly one of owner_id, queue."]})


class TaskIn(Schema):
    class Meta:
        unknown = RAISE

    due_at = UtcDateTime(required=True)
    note = _opt_str(2000)


class TaskOut(Schema):
    id = fields.String(attribute="_id")
    lead_id = fields.String()
    due_at = UtcDateTime()
    note = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    fired = fields.Boolean()
    fired_at = UtcDateTime(allow_none=True)
    status = fields.String(dump_default="open", metadata={
        "description": "open, completed or cancelled"})
    finished_at = UtcDateTime(allow_none=True)
    finished_by = fields.String(allow_none=True)
    created_at = UtcDateTime()


class TaskList(Schema):
    items = fields.List(fields.Nested(TaskOut))


class HistoryIn(CurrencyAmounts):
    """A lead's past, in a historical import (admins only): when it was captured and how far
    it went. The domain checks the times against its status (leads.domain.history_changes)."""

    class Meta:
        unknown = RAISE

    created_at = UtcDateTime(required=True, metadata={
        "description": "when the lead was captured (RFC 3339 with an offset)"})
    status = fields.String(load_default="new", validate=validate.OneOf(domain.HISTORY_PATHS))
    contacted_at = UtcDateTime(load_default=None)
    qualified_at = UtcDateTime(load_default=None)
    disqualified_at = UtcDateTime(load_default=None)
    reason = _opt_str(500)
    converted_at = UtcDateTime(load_default=None)
    amount = Money(allow_none=True, load_default=None)
    currency = Currency(allow_none=True, load_default=None)
    owner_id = fields.String(load_default=None, validate=validate.Length(min=1, max=100))
    pipeline_id = fields.String(load_default=None, validate=validate.Length(min=1, max=100),
                                metadata={"description": "the deal pipeline of a conversion"})

    @validates_schema
    def currency_with_amount(self, data, **kwargs):
        if data.get("amount") is not None and data.get("currency") is None:
            raise ValidationError({"currency": ["Required with an amount."]})


class ImportQuery(Schema):
    charset = fields.String(validate=validate.Length(min=1, max=40), metadata={
        "description": "how the CSV is encoded (wins over the Content-Type's charset); "
                       "when absent: a byte-order mark, then UTF-8, then GB18030"})
    history = fields.Boolean(load_default=False, metadata={
        "description": "admins only: columns created_at (required, with an offset), "
                       "status, contacted_at, qualified_at, disqualified_at, reason, "
                       "converted_at, amount, currency, owner and pipeline load each lead's "
                       "past; its events carry those times in their data"})


class ImportRowError(Schema):
    line = fields.Integer()
    reason = fields.String()
    errors = fields.Dict(allow_none=True)
    existing_id = fields.String(allow_none=True)
    duplicate_of_line = fields.Integer(allow_none=True)


class ImportedLead(Schema):
    line = fields.Integer()
    id = fields.String()


class ImportResult(Schema):
    idempotency_key = fields.String(allow_none=True)
    rows = fields.Integer()
    created = fields.Integer()
    duplicates = fields.Integer()
    invalid = fields.Integer()
    errors = fields.List(fields.Nested(ImportRowError))


class CaptureIn(LeadIn):
    """A public web form's lead (web-to-lead): the form decides the source; a lead needs
    a way back to it (e-mail or phone). Form-encoded bodies name `utm_<key>` and
    `custom_<key>` flat (leads.capture)."""

    class Meta:
        unknown = RAISE
        exclude = ("source",)

    custom = CustomFields(allow_none=True, load_default=None, max_fields=20, max_chars=2000)

    @validates_schema
    def reachable(self, data, **kwargs):
        if not data.get("email") and not (data.get("phone") or "").strip():
            raise ValidationError({"email": ["Give an e-mail or a phone number."]})


class CaptureReceived(Schema):
    received = fields.Boolean(metadata={
        "description": "always true: the answer never says whether the address was known"})


class LeadPatch(Schema):
    """The fields a PATCH sets (If-Match required); custom fields merge, null removes one."""

    class Meta:
        unknown = RAISE

    name = fields.String(validate=[validate.Length(min=1, max=200), validate_not_blank])
    company = _opt_str(200)
    email = Email(allow_none=True, validate=validate.Length(max=254))
    phone = _opt_str(40, metadata={"description": "any format; stored as E.164 (read for "
                                   "the lead's country when it has no +)"})
    country = Country(allow_none=True)
    region = _opt_str(100)
    custom = CustomFields(allow_none=True)

    @post_load
    def strip(self, data, **kwargs):
        for key in ("company", "region", "phone"):
            if isinstance(data.get(key), str):
                data[key] = data[key].strip() or None
        if "name" in data:
            data["name"] = data["name"].strip()
        return data


class RecycleIn(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=[validate.Length(min=1, max=500),
                                                    validate_not_blank])


class SearchQuery(Schema):
    class Meta:
        unknown = RAISE

    q = fields.String(required=True, validate=[validate.Length(min=1, max=200),
                                               validate_not_blank], metadata={
        "description": "the start of a name, company, e-mail or phone (any format: "
                       "`138 0013 8000` finds +8613800138000)"})
    by = fields.String(load_default="any", validate=validate.OneOf(search.BY), metadata={
        "description": "which key; `any` reads an e-mail or phone from its shape, else "
                       "searches names and companies"})
    order = fields.String(load_default="asc", validate=validate.OneOf(("asc", "desc")),
                          metadata={"description": "by the matched key, then id"})
    status = fields.String(validate=validate.OneOf(domain.STATUSES))
    owner_id = fields.String(validate=validate.Length(min=1, max=100))
    source = fields.String(validate=validate.OneOf(SOURCES))
    grade = fields.String(validate=validate.OneOf("ABCD"))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(validate=validate.Length(max=2000))
