"""Custom fields of deals, pure: definitions as stored, and "required from stage X" as what
it is, a requirement of the stage's gate in the pipeline (deals.pipelines). The definition
does not keep it: it is read back from the pipelines, so there is one place per rule."""
from deals import pipelines as P
from kit import customfields as CF
from kit.errors import Invalid

ENTITY = "deal"


def definition(data, now, actor=None):
    """The stored definition of a FieldIn body."""
    return CF.stored(data, ENTITY, now, actor)


def gate_with(pipeline, stage_key, field_key):
    """The pipeline's stages with `field_key` required by the gate of `stage_key` (an open
    stage, or won), or None when it is required there already."""
    stage = P.stage_of(pipeline, stage_key)
    if stage is None or stage["key"] == P.LOST:
        raise Invalid(f"No stage {stage_key!r} to require a field from in pipeline "
                      f"{pipeline['_id']!r}.", errors={"required_from": [
                          f"Not an open stage (or won) of pipeline {pipeline['_id']!r}."]})
    if field_key in stage["required_fields"]:
        return None
    return [{**s, "required_fields": [*s["required_fields"], field_key]}
            if s["key"] == stage_key else s for s in pipeline["stages"]]


def required_from(pipelines, field_key):
    """Where the gates require the field: [{pipeline_id, stage}]."""
    return [{"pipeline_id": p["_id"], "stage": s["key"]} for p in pipelines
            for s in p["stages"] if field_key in s["required_fields"]]


def checked(definitions, custom):
    """The custom values as stored, each defined one checked by its type; Invalid naming
    every bad one."""
    values, errors = CF.check_values(definitions, custom)
    if errors:
        raise Invalid("Custom fields do not match their definitions.",
                      errors={"custom": errors})
    return values


def labelled(gate, definitions, locale="en"):
    """A gate refusal whose message names custom fields with their labels too
    ("budget_code (Budget code)"), so a person reading it knows which field to fill."""
    fields = gate.extra.get("missing_fields") or []
    named = [f"{key} ({CF.label(definitions[key], locale)})" if key in definitions else key
             for key in fields]
    if named == fields:
        return gate
    detail = gate.detail.replace(f"fields: {', '.join(fields)}", f"fields: {', '.join(named)}")
    return type(gate)(detail, **gate.extra)
