"""Marshmallow schemas of the metrics service's HTTP API."""
import datetime as dt

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from kit.fields import UtcDateTime, utcnow

DEFAULT_WINDOW = dt.timedelta(days=30)


class FunnelQuery(Schema):
    from_ = UtcDateTime(data_key="from", load_default=None,
                        metadata={"description": "cohort start (inclusive); default: to - 30 days"})
    to = UtcDateTime(load_default=None, metadata={"description": "cohort end (exclusive); "
                                                                 "default: now"})
    pipeline = fields.String(load_default=None, validate=validate.Length(min=1, max=100),
                             metadata={"description": "count deal stages of this pipeline only "
                                                     "(default: the funnel pipeline)"})

    @validates_schema
    def _window(self, data, **kwargs):
        if data.get("from_") and data.get("to") and data["from_"] >= data["to"]:
            raise ValidationError("Must be later than `from`.", "to")

    @post_load
    def _defaults(self, data, **kwargs):
        data["to"] = data["to"] or utcnow()
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


class StageActivities(Schema):
    stage = fields.String()
    deals = fields.Integer(metadata={"description": "the pipeline's deals that entered the "
                                                    "stage"})
    activities = fields.Integer(metadata={"description": "activities logged on deals in it"})
    by_kind = fields.Dict(keys=fields.String(), values=fields.Integer(),
                          metadata={"description": "activities by kind (call, email, "
                                                  "meeting, note)"})
    per_deal = fields.Float(allow_none=True, metadata={"description": "activities / deals"})


class RecycledLeads(Schema):
    recycled = fields.Integer(metadata={"description": "leads recycled into nurture"})
    converted = fields.Integer(metadata={"description": "of them, converted afterwards"})
    conversion_rate = fields.Float(allow_none=True)


class FunnelTotals(Schema):
    activities_by_stage = fields.List(fields.Nested(StageActivities))
    recycled_leads = fields.Nested(RecycledLeads)


class FunnelOut(Schema):
    from_ = UtcDateTime(data_key="from")
    to = UtcDateTime()
    pipeline = fields.String(allow_none=True)
    leads = fields.Integer()
    stages = fields.List(fields.Nested(FunnelStage))
    transitions = fields.List(fields.Nested(FunnelTransition))
    overall_conversion_rate = fields.Float(allow_none=True)
    totals = fields.Nested(FunnelTotals, allow_none=True, metadata={
        "description": "since the start, not the cohort: activities per deal per stage of "
                       "the pipeline, and recycled leads converted; null until the instance "
                       "has restored its KPIs"})
