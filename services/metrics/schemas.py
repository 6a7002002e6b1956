"""Marshmallow schemas of the metrics service's HTTP API."""
import datetime as dt

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from kit.fields import Money, UtcDateTime, utcnow

DEFAULT_WINDOW = dt.timedelta(days=30)


def _not_future(value):
    if value > utcnow():
        raise ValidationError("Must not be in the future.")


def _as_of(description):
    return UtcDateTime(load_default=None, validate=_not_future,
                       metadata={"description": description})


class FunnelQuery(Schema):
    from_ = UtcDateTime(data_key="from", load_default=None,
                        metadata={"description": "cohort start (inclusive); default: to - 30 days"})
    to = UtcDateTime(load_default=None, metadata={"description": "cohort end (exclusive); "
                                                                 "default: as_of, or now"})
    as_of = _as_of("answer as the funnel was at this moment (only events that happened by "
                   "then count); default: now")
    pipeline = fields.String(load_default=None, validate=validate.Length(min=1, max=100),
                             metadata={"description": "count deal stages of this pipeline only "
                                                     "(default: the funnel pipeline)"})

    @validates_schema
    def _window(self, data, **kwargs):
        if data.get("from_") and data.get("to") and data["from_"] >= data["to"]:
            raise ValidationError("Must be later than `from`.", "to")

    @post_load
    def _defaults(self, data, **kwargs):
        data["to"] = data["to"] or data["as_of"] or utcnow()
        data["from_"] = data["from_"] or data["to"] - DEFAULT_WINDOW
        if data["from_"] >= data["to"]:
            raise ValidationError({"from": ["Must be earlier than `to`."]})
        return data


class FunnelStage(Schema):
    stage = fields.String()
    reached = fields.Integer(metadata={"description": "cohort leads that reached the stage"})


class FunnelTransition(Schema):
    from_ = fields.String(data_key="from", attribute="from")
    to = fields.String()
    conversion_rate = fields.Float(allow_none=True,
                                   metadata={"description": "reached(to) / reached(from)"})
    median_seconds = fields.Float(allow_none=True)
    samples = fields.Integer(metadata={"description": "leads with both stage times"})


class FunnelOut(Schema):
    from_ = UtcDateTime(data_key="from")
    to = UtcDateTime()
    as_of = UtcDateTime(allow_none=True)
    pipeline = fields.String(allow_none=True)
    leads = fields.Integer()
    stages = fields.List(fields.Nested(FunnelStage))
    transitions = fields.List(fields.Nested(FunnelTransition))
    overall_conversion_rate = fields.Float(allow_none=True)


# --- forecast as of a moment, and its back-test ------------------------------------------------


class ForecastQuery(Schema):
    as_of = _as_of("the deals open at this moment, as they were then; default: now")


class ForecastRow(Schema):
    month = fields.String(metadata={"description": "expected close month (YYYY-MM), or "
                                                   "unscheduled"})
    owner_id = fields.String(allow_none=True)
    currency = fields.String()
    deals = fields.Integer()
    weighted = Money(metadata={"description": "sum of amount x probability / 100"})
    best_case = Money(metadata={"description": "sum of the open deals' amounts"})


class ForecastTotal(ForecastRow):
    class Meta:
        exclude = ("owner_id",)


class ForecastOut(Schema):
    as_of = UtcDateTime()
    rows = fields.List(fields.Nested(ForecastRow))
    totals = fields.List(fields.Nested(ForecastTotal))


class BacktestQuery(Schema):
    as_of = UtcDateTime(required=True, validate=_not_future,
                        metadata={"description": "the moment of the forecast"})
    until = UtcDateTime(load_default=None, validate=_not_future,
                        metadata={"description": "wins up to this moment; default: now"})

    @post_load
    def _until(self, data, **kwargs):
        data["until"] = data["until"] or utcnow()
        if data["until"] <= data["as_of"]:
            raise ValidationError({"until": ["Must be later than `as_of`."]})
        return data


class BacktestRow(Schema):
    month = fields.String()
    owner_id = fields.String(allow_none=True)
    currency = fields.String()
    forecast_deals = fields.Integer(metadata={"description": "deals open at as_of expected "
                                                            "to close this month"})
    weighted = Money(metadata={"description": "their weighted amount as of as_of"})
    best_case = Money()
    won_deals = fields.Integer(metadata={"description": "deals won after as_of (by until) "
                                                       "with won_at in this month"})
    won = Money(metadata={"description": "their amount when won"})
    difference = Money(allow_negative=True, metadata={"description": "won - weighted"})


class BacktestOut(Schema):
    as_of = UtcDateTime()
    until = UtcDateTime()
    rows = fields.List(fields.Nested(BacktestRow))


class RebuildOut(Schema):
    active = fields.String(metadata={"description": "the projection database in use"})
    previous = fields.String(allow_none=True)
    rebuild = fields.Dict(allow_none=True, metadata={
        "description": "the last rebuild: state (running, done, failed), target database, "
                       "events applied, started_at, heartbeat, finished_at, error"})
