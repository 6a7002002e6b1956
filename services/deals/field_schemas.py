"""Marshmallow schemas of deals' custom field definitions: the kit's, and the stages whose
gates require a field (deals.fields)."""
from marshmallow import RAISE, Schema, fields, validate

from deals import pipelines as P
from kit import customfield_schemas as K


class StageRef(Schema):
    class Meta:
        unknown = RAISE

    pipeline_id = fields.String(load_default=P.DEFAULT_PIPELINE_ID,
                                validate=validate.Length(min=1, max=100))
    stage = fields.String(required=True, validate=validate.Regexp(P.KEY))


class FieldIn(K.FieldIn):
    reserved = P.STANDARD_FIELDS
    required_from = fields.List(fields.Nested(StageRef), load_default=list, metadata={
        "description": "stages from which the field is required: added to each stage's "
                       "gate (the pipeline holds the rule; a move into the stage, or past "
                       "it, needs the field)"})


class FieldOut(K.FieldOut):
    required_from = fields.List(fields.Dict(), metadata={
        "description": "read from the pipelines' gates"})


class FieldList(Schema):
    items = fields.List(fields.Nested(FieldOut))
