"""Marshmallow schemas of the quotes HTTP API (bodies, queries, responses)."""
import re
from decimal import Decimal

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from kit.contacts import ContactFields
from kit.contacts import ContactOut as ContactOut  # the customer look-up's answer
from kit.fields import Currency, Integer, Money, UtcDateTime, validate_not_blank
from quotes import lifecycle as L
from quotes.contracts import STATUSES as CONTRACT_STATUSES
from quotes.store import etag as etag_of

ID = validate.Length(min=1, max=100)
CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$",
                       error="Letters, digits, '_' and '-' (max 64), starting with a letter "
                             "or digit.")
PERCENT = validate.Range(0, 100)
# A percent is a decimal string, so OpenAPI 3.0 can state its range only as a pattern
# (leading zeros as Money takes them): 0 to 100, and above 0 to 100.
PERCENT_PATTERN = r"^(0{0,3}100(\.0{1,2})?|0{0,3}[0-9]{1,2}(\.[0-9]{1,2})?)$"
POSITIVE_PERCENT_PATTERN = (r"^(0{0,3}100(\.0{1,2})?|0{0,3}[1-9][0-9]?(\.[0-9]{1,2})?"
                            r"|0{1,3}\.(0[1-9]|[1-9][0-9]?))$")


def _name(required=True, **kw):
    return fields.String(required=required, validate=[validate_not_blank,
                                                      validate.Length(max=200)], **kw)


def _text(**kw):
    return fields.String(validate=validate.Length(max=4000), **kw)


_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?")


class Quantity(fields.Field):
    """A positive quantity as a decimal string or a JSON number (exact: the kit parses JSON
    numbers as Decimal), at most 3 places; strings out."""

    default_error_messages = {"invalid": "Not a valid quantity: give e.g. \"2\" or 1.5.",
                              "range": "Must be more than 0 and less than 10^9.",
                              "places": "At most 3 decimal places."}

    def __init__(self, **kwargs):
        # above 0, below 10^9, at most 3 places
        kwargs["metadata"] = {"type": "string", "pattern": r"^(0{0,8}[1-9][0-9]{0,8}"
                              r"(\.[0-9]{1,3})?|0{1,9}\.([1-9][0-9]{0,2}|0[1-9][0-9]?|00[1-9]))$",
                              "example": "2", **kwargs.get("metadata", {})}
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else format(Decimal(value), "f")

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
            raise self.make_error("invalid")
        # Decimal() alone also takes "1_0" and full-width or other Unicode digits ("１２")
        if isinstance(value, str) and not _QUANTITY.fullmatch(value.strip()):
            raise self.make_error("invalid")
        try:
            amount = Decimal(str(value).strip())
        except ArithmeticError:
            raise self.make_error("invalid") from None
        if not amount.is_finite():
            raise self.make_error("invalid")
        if not 0 < amount < 10 ** 9:
            raise self.make_error("range")
        if -amount.as_tuple().exponent > 3:
            raise self.make_error("places")
        return amount


# --- price book ------------------------------------------------------------------------------


class ProductIn(Schema):
    code = fields.String(required=True, validate=CODE)
    name_zh = _name()
    name_en = _name()
    unit = fields.String(required=True, validate=[validate_not_blank,
                                                   validate.Length(min=1, max=40)])
    prices = fields.Dict(keys=Currency(), values=Money(), required=True,
                         validate=validate.Length(min=1, max=50),
                         metadata={"description": "list price per ISO 4217 currency",
                                   "minProperties": 1, "maxProperties": 50})
    tax_rate = Integer(required=True, validate=PERCENT,
                       metadata={"description": "percent; one of the configured rates"})

    @validates_schema(pass_original=True)
    def _one_price_per_currency(self, data, original, **kwargs):
        # "usd" and "USD" are one currency: the dict would keep one price and drop the other
        raw = original.get("prices") if isinstance(original, dict) else None
        seen = {}
        for key in raw if isinstance(raw, dict) else ():
            seen.setdefault(str(key).strip().upper(), []).append(key)
        twice = sorted(keys for keys in seen.values() if len(keys) > 1)
        if twice:
            raise ValidationError({"prices": [
                "One price per currency: " + "; ".join(", ".join(k) for k in twice)
                + " name the same currency."]})


class ProductPut(ProductIn):
    class Meta:
        exclude = ("code",)


class ProductOut(Schema):
    code = fields.String(attribute="_id")
    name_zh = fields.String()
    name_en = fields.String()
    unit = fields.String()
    prices = fields.Dict(keys=fields.String(), values=Money())
    tax_rate = fields.Integer()
    version = fields.Integer()
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class ProductPage(Schema):
    items = fields.List(fields.Nested(ProductOut))
    next_cursor = fields.String(allow_none=True)


class ProductQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String()


# --- quotes ----------------------------------------------------------------------------------


class LineIn(Schema):
    product_code = fields.String(load_default=None, allow_none=True, validate=CODE)
    description = fields.String(load_default=None, allow_none=True,
                                validate=[validate_not_blank, validate.Length(max=500)])
    unit = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    quantity = Quantity(required=True)
    unit_price = Money(load_default=None, allow_none=True,
                       metadata={"description": "free-text lines only; product lines take "
                                 "the price book's"})
    discount_percent = Money(places=2, load_default=None, allow_none=True, validate=PERCENT,
                             metadata={"pattern": PERCENT_PATTERN})
    discount_amount = Money(load_default=None, allow_none=True)
    tax_rate = Integer(load_default=None, allow_none=True, validate=PERCENT,
                       metadata={"description": "percent; free-text lines only"})


class CustomerIn(ContactFields):
    """The customer a quote is for; with an e-mail address, they get the quote (and later
    the contract to sign) by mail."""

    name = _name()
    contact = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=200))
    address = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=500))


class _Priced(Schema):
    lines = fields.List(fields.Nested(LineIn), validate=validate.Length(min=1, max=200))
    discount_percent = Money(places=2, load_default=None, allow_none=True, validate=PERCENT,
                             metadata={"description": "quote-level discount",
                                       "pattern": PERCENT_PATTERN})
    discount_amount = Money(load_default=None, allow_none=True,
                            metadata={"description": "quote-level discount"})
    valid_until = UtcDateTime()
    terms = _text(load_default=None, allow_none=True)
    customer = fields.Nested(CustomerIn, load_default=None, allow_none=True,
                             metadata={"description": "default: the deal's name"})

    @validates_schema
    def one_discount(self, data, **kwargs):
        if data.get("discount_percent") is not None and \
                data.get("discount_amount") is not None:
            raise ValidationError({"discount_amount": ["Give discount_percent or this."]})


class QuoteIn(_Priced):
    deal_id = fields.String(required=True, validate=ID)
    currency = Currency(required=True)
    owner_id = fields.String(load_default=None, allow_none=True, validate=ID)
    lines = fields.List(fields.Nested(LineIn), required=True,
                        validate=validate.Length(min=1, max=200))
    valid_until = UtcDateTime(required=True)


class QuotePatch(_Priced):
    """Only what is given changes; a draft only."""

    currency = Currency()


class ApproveIn(Schema):
    tier = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))
    reason = _text(load_default=None, allow_none=True)


class ReasonIn(Schema):
    reason = fields.String(required=True, validate=[validate_not_blank,
                                                    validate.Length(max=2000)])


class CustomerAnswerIn(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200),
                         metadata={"description": "the customer's typed name"})
    reason = _text(load_default=None, allow_none=True)


class LineOut(Schema):
    product_code = fields.String(allow_none=True)
    description = fields.String()
    name_zh = fields.String(allow_none=True)
    name_en = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)
    quantity = Quantity()
    unit_price = Money()
    list_price = Money(allow_none=True)
    discount_percent = Money(allow_none=True)
    discount_amount = Money(allow_none=True)
    tax_rate = fields.Integer()
    gross = Money()
    line_discount = Money()
    quote_discount = Money()
    net = Money()
    tax = Money()
    total = Money()


class TotalsOut(Schema):
    subtotal = Money()
    discount = Money()
    tax = Money()
    total = Money()
    discount_percent = Money()


class DiscountOut(Schema):
    percent = Money(allow_none=True)
    amount = Money(allow_none=True)


class TierOut(Schema):
    key = fields.String()
    roles = fields.List(fields.String())
    reason = fields.String()


class ApprovalOut(Schema):
    tier = fields.String()
    by = fields.String()
    roles = fields.List(fields.String())
    at = UtcDateTime()
    reason = fields.String(allow_none=True)


class ByOut(Schema):
    by = fields.String(allow_none=True)
    at = UtcDateTime()
    reason = fields.String(allow_none=True)


class ResponseOut(Schema):
    answer = fields.String()
    at = UtcDateTime()
    name = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)


class CustomerOut(Schema):
    name = fields.String(allow_none=True)
    contact = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    locale = fields.String(allow_none=True)
    time_zone = fields.String(allow_none=True)


class PreviousOut(Schema):
    version = fields.Integer(attribute="quote_version")
    status = fields.String()
    was = fields.String()
    totals = fields.Nested(TotalsOut)
    superseded_at = UtcDateTime()


class QuoteOut(Schema):
    id = fields.String(attribute="_id")
    number = fields.String()
    deal_id = fields.String()
    owner_id = fields.String(allow_none=True)
    created_by = fields.String(allow_none=True)
    customer = fields.Nested(CustomerOut, allow_none=True)
    currency = fields.String()
    version = fields.Integer(attribute="quote_version",
                             metadata={"description": "the quote's version (1, 2, ...)"})
    etag = fields.Function(etag_of, metadata={
        "type": "integer", "description": "the ETag: changes with every change"})
    status = fields.String(validate=validate.OneOf(L.STATUSES))
    allowed_actions = fields.Method("_allowed")
    lines = fields.List(fields.Nested(LineOut))
    quote_discount = fields.Nested(DiscountOut)
    totals = fields.Nested(TotalsOut)
    valid_until = UtcDateTime()
    terms = fields.String(allow_none=True)
    approvals_required = fields.List(fields.Nested(TierOut))
    approvals = fields.List(fields.Nested(ApprovalOut))
    submitted_at = UtcDateTime(allow_none=True)
    approved_at = UtcDateTime(allow_none=True)
    rejection = fields.Nested(ByOut, allow_none=True)
    sent_at = UtcDateTime(allow_none=True)
    link_expires_at = UtcDateTime(allow_none=True)
    response = fields.Nested(ResponseOut, allow_none=True)
    voided = fields.Nested(ByOut, allow_none=True)
    previous = fields.List(fields.Nested(PreviousOut))
    created_at = UtcDateTime()
    updated_at = UtcDateTime()

    def _allowed(self, obj):
        return [a for a in L.allowed(obj["status"]) if a != "expire"]


class QuoteQuery(Schema):
    deal_id = fields.String(validate=ID, metadata={"description": "one deal's quotes"})
    status = fields.String(validate=validate.OneOf(L.STATUSES),
                           metadata={"description": "e.g. submitted: awaiting approval"})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String()


class QuotePage(Schema):
    items = fields.List(fields.Nested(QuoteOut))
    next_cursor = fields.String(allow_none=True)


class LinkOut(Schema):
    url = fields.String()
    token = fields.String()
    expires_at = UtcDateTime()


class SentOut(Schema):
    quote = fields.Nested(QuoteOut)
    link = fields.Nested(LinkOut)


# --- contracts and payments ------------------------------------------------------------------


class PartyOut(Schema):
    name = fields.Raw(allow_none=True, metadata={"description": "text, or {locale: text}"})
    company = fields.String(allow_none=True)
    representative = fields.String(allow_none=True)
    address = fields.Raw(allow_none=True)


class PartiesOut(Schema):
    seller = fields.Nested(PartyOut)
    buyer = fields.Nested(PartyOut)


class MilestoneOut(Schema):
    key = fields.String()
    label = fields.String()
    percent = Money()
    amount = Money()
    trigger = fields.String()
    due_days = fields.Integer()
    due_at = UtcDateTime(allow_none=True)
    paid = Money()


class SignatureOut(Schema):
    name = fields.String()
    at = UtcDateTime()
    address = fields.String(allow_none=True)
    pdf_sha256 = fields.String()


class PaymentOut(Schema):
    payment_id = fields.String()
    amount = Money()
    method = fields.String()
    reference = fields.String(allow_none=True)
    received_at = UtcDateTime()
    recorded_at = UtcDateTime()
    recorded_by = fields.String(allow_none=True)


class ContractOut(Schema):
    id = fields.String(attribute="_id")
    number = fields.String()
    quote_id = fields.String()
    quote_number = fields.String()
    quote_version = fields.Integer()
    deal_id = fields.String()
    parties = fields.Nested(PartiesOut)
    amount = Money()
    currency = fields.String()
    milestones = fields.List(fields.Nested(MilestoneOut))
    terms = fields.String()
    status = fields.String()
    link_expires_at = UtcDateTime(allow_none=True)
    signature = fields.Nested(SignatureOut, allow_none=True)
    countersignature = fields.Nested(ByOut, allow_none=True)
    payments = fields.List(fields.Nested(PaymentOut))
    paid_total = Money()
    fully_paid_at = UtcDateTime(allow_none=True)
    voided = fields.Nested(ByOut, allow_none=True)
    etag = fields.Function(etag_of, metadata={
        "type": "integer", "description": "the ETag: changes with every change"})
    created_at = UtcDateTime()
    updated_at = UtcDateTime()


class ContractQuery(Schema):
    deal_id = fields.String(validate=ID, metadata={"description": "one deal's contracts"})
    status = fields.String(validate=validate.OneOf(CONTRACT_STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String()


class ContractList(Schema):
    items = fields.List(fields.Nested(ContractOut))
    next_cursor = fields.String(allow_none=True)


class SignIn(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    name = fields.String(required=True, validate=[validate_not_blank,
                                                  validate.Length(max=200)],
                         metadata={"description": "the signer's typed name"})


class MilestoneIn(Schema):
    key = fields.String(required=True, validate=validate.Regexp(
        r"^[a-z][a-z0-9_]{0,31}$", error="Lower-case letters, digits and '_' (max 32)."))
    label = fields.String(required=True, validate=[validate_not_blank,
                                                   validate.Length(max=200)])
    percent = Money(places=2, required=True, validate=validate.Range(
        min=0, min_inclusive=False, max=100), metadata={"pattern": POSITIVE_PERCENT_PATTERN})
    trigger = fields.String(required=True, validate=validate.OneOf(
        ("signed", "delivery_accepted")))
    due_days = Integer(load_default=0, validate=validate.Range(0, 3650))


class ScheduleIn(Schema):
    milestones = fields.List(fields.Nested(MilestoneIn), required=True,
                             validate=validate.Length(min=1, max=20),
                             metadata={"description": "percents add up to 100; keys are "
                                       "unique"})

    @validates_schema
    def unique_keys(self, data, **kwargs):
        # a key names one milestone to whoever reads the schedule back (finance, the
        # API's clients): two with one key could not be told apart
        keys = [m["key"] for m in data.get("milestones") or ()]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValidationError({"milestones": [
                f"Each milestone needs its own key; {', '.join(twice)} is given more than "
                "once."]})


class PaymentIn(Schema):
    amount = Money(required=True, validate=validate.Range(min=0, min_inclusive=False),
                   metadata={"pattern": r"^([1-9][0-9]{0,14}(\.[0-9]{1,4})?"
                             r"|0\.([1-9][0-9]{0,3}|0[1-9][0-9]{0,2}|00[1-9][0-9]?|000[1-9]))$"})
    method = fields.String(required=True, validate=validate.OneOf(
        ("bank_transfer", "card", "cash", "cheque", "other")))
    reference = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(max=200))
    received_at = UtcDateTime(required=True)
