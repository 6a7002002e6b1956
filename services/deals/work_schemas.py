"""Marshmallow schemas of deal activities and tasks (deals.activities)."""
from marshmallow import RAISE, Schema, fields, validate

from kit import activities
from kit.fields import Integer, UtcDateTime


def _opt_str(max_len):
    return fields.String(allow_none=True, load_default=None,
                         validate=validate.Length(max=max_len))


class ActivityIn(Schema):
    class Meta:
        unknown = RAISE

    type = fields.String(required=True, validate=validate.OneOf(activities.TYPES))
    at = UtcDateTime(load_default=None, allow_none=True,
                     metadata={"description": "when it happened (default: now)"})
    outcome = _opt_str(100)
    summary = _opt_str(5000)
    duration_minutes = Integer(allow_none=True, load_default=None,
                               validate=validate.Range(min=0, max=24 * 60))


class ActivityOut(Schema):
    id = fields.String()
    type = fields.String()
    source = fields.String(metadata={"description": "deal, or lead (the lead's timeline)"})
    stage = fields.String(allow_none=True)
    at = UtcDateTime()
    actor = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    summary = fields.String(allow_none=True)
    duration_minutes = fields.Integer(allow_none=True)
    recorded_at = UtcDateTime()


class DealTimeline(Schema):
    deal_id = fields.String()
    lead_id = fields.String(allow_none=True)
    entries = fields.List(fields.Nested(ActivityOut))
    lead_timeline_missing = fields.String(allow_none=True, metadata={
        "description": "why the lead's part is missing (null: included, or no lead)"})


class TaskIn(Schema):
    class Meta:
        unknown = RAISE

    due_at = UtcDateTime(required=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    note = _opt_str(2000)
    owner_id = fields.String(load_default=None, validate=validate.Length(min=1, max=100),
                             metadata={"description": "default: the deal's owner"})


class TaskOut(Schema):
    id = fields.String(attribute="_id")
    deal_id = fields.String()
    due_at = UtcDateTime()
    title = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    owner_id = fields.String(allow_none=True)
    status = fields.String()
    fired = fields.Boolean()
    fired_at = UtcDateTime(allow_none=True)
    finished_at = UtcDateTime(allow_none=True)
    finished_by = fields.String(allow_none=True)
    created_at = UtcDateTime()


class TaskList(Schema):
    items = fields.List(fields.Nested(TaskOut))
