"""Marshmallow schemas of typed custom field definitions (kit.customfields), for every
service that lets admins define them."""
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

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
    reserved = ()  # a service's standard field names

    @validates_schema
    def rules(self, data, **kwargs):
        labels = data.get("labels") or {}
        definition = {**data, "labels": {"en": labels.get("en"),
                                         "zh-CN": labels.get("zh_cn")},
                      "options": [{"key": o["key"]} for o in data.get("options") or ()]}
        errors = CF.definition_errors(definition, reserved=self.reserved)
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
    created_at = UtcDateTime()


class FieldList(Schema):
    items = fields.List(fields.Nested(FieldOut))


def describe(doc, definitions, schema_names):
    """An OpenAPI document (a copy, kit.ops) with the defined fields as the properties of
    the `custom` member of these body schemas."""
    typed = {key: CF.json_schema(d) for key, d in definitions.items()}
    for name in schema_names:
        custom = doc["components"]["schemas"].get(name, {}).get("properties", {}).get("custom")
        if custom is not None and typed:
            custom["properties"] = typed
    return doc


def store_of(container):
    return next(d.store for d in container.dependencies if d.attr_name == "store")
