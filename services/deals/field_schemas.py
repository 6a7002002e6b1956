"""Marshmallow schemas of custom field definitions (kit.customfields)."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from deals import pipelines as P
from kit import customfields as CF
from kit.fields import Currency, UtcDateTime

LABELS = {"description": "a label per locale: en and zh-CN are required"}


class Labels(Schema):
    class Meta:
        unknown = RAISE

    en = fields.String(required=True, validate=validate.Length(min=1, max=200))
    zh_cn = fields.String(required=True, data_key="zh-CN",
                          validate=validate.Length(min=1, max=200))


class Option(Schema):
    class Meta:
        unknown = RAISE

    key = fields.String(required=True, validate=validate.Regexp(CF.KEY))
    labels = fields.Nested(Labels, required=True)


class StageRef(Schema):
    class Meta:
        unknown = RAISE

    pipeline_id = fields.String(load_default=P.DEFAULT_PIPELINE_ID,
                                validate=validate.Length(min=1, max=100))
    stage = fields.String(required=True, validate=validate.Regexp(P.KEY))


class FieldIn(Schema):
    class Meta:
        unknown = RAISE

    key = fields.String(required=True, validate=validate.Regexp(
        CF.KEY, error="1-64 lower-case letters, digits or '_', starting with a letter."))
    type = fields.String(required=True, validate=validate.OneOf(CF.TYPES))
    labels = fields.Nested(Labels, required=True, metadata=LABELS)
    options = fields.List(fields.Nested(Option), load_default=list,
                          validate=validate.Length(max=CF.MAX_OPTIONS))
    min = fields.Decimal(load_default=None, allow_none=True, as_string=True)
    max = fields.Decimal(load_default=None, allow_none=True, as_string=True)
    max_length = fields.Integer(load_default=None, allow_none=True,
                                validate=validate.Range(1, 100000))
    currency = Currency(load_default=None, allow_none=True)
    required_from = fields.List(fields.Nested(StageRef), load_default=list, metadata={
        "description": "stages from which the field is required: added to each stage's "
                       "gate (the pipeline holds the rule; a move into the stage, or past "
                       "it, needs the field)"})

    @validates_schema
    def rules(self, data, **kwargs):
        labels = data.get("labels") or {}
        definition = {**data, "labels": {"en": labels.get("en"),
                                         "zh-CN": labels.get("zh_cn")},
                      "options": [{"key": o["key"]} for o in data.get("options") or ()]}
        errors = CF.definition_errors(definition, reserved=P.STANDARD_FIELDS)
        if errors:
            raise ValidationError(errors)


class OptionOut(Schema):
    key = fields.String()
    labels = fields.Dict()


class FieldOut(Schema):
    key = fields.String()
    entity = fields.String()
    type = fields.String()
    labels = fields.Dict()
    options = fields.List(fields.Nested(OptionOut))
    min = fields.String(allow_none=True)
    max = fields.String(allow_none=True)
    max_length = fields.Integer(allow_none=True)
    currency = fields.String(allow_none=True)
    required_from = fields.List(fields.Dict(), metadata={
        "description": "read from the pipelines' gates"})
    created_at = UtcDateTime()


class FieldList(Schema):
    items = fields.List(fields.Nested(FieldOut))
