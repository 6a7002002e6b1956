"""Pipelines and their stage gates (SOPs): pure rules, no I/O.

A stage is a dict {key, name, probability, required_fields, required_checklist, stall_days,
terminal}. Every pipeline ends with the terminal stages `won` and `lost`; the open stages
before them are ordered. A deal may enter a stage only when the stage's gate is met: each
required field is set and each required checklist item is ticked. A forward move must also
meet the gates of the open stages it skips, so jumping ahead never bypasses an SOP; closing
as won is a forward move too (it meets the gates of every open stage after the deal's one,
then won's own). Closing as lost meets only lost's gate: a deal can be lost from anywhere.

A pipeline has at most MAX_STAGES stages: stage keys are Prometheus label values in the
metrics service, so their number must stay bounded.
"""
import re

from kit import reasons
from kit.errors import Conflict

WON = "won"
LOST = "lost"
TERMINAL = (WON, LOST)
DEFAULT_PIPELINE_ID = "default"

KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# won and lost included; bounds the label values metrics exposes per pipeline
MAX_STAGES = 20
# lost reasons are label values in the metrics service too: their number stays bounded
MAX_REASONS = 30

# Deal attributes a gate may require; any other name refers to a custom field.
STANDARD_FIELDS = ("name", "account", "contact", "owner_id", "amount", "currency",
                   "expected_close", "needs_summary", "accepted_quote",
                   "contract_signed", "first_payment")


def _stage(key, name, probability, stall_days=None, fields=(), checklist=()):
    return {"key": key, "name": name, "probability": probability,
            "required_fields": list(fields), "required_checklist": list(checklist),
            "stall_days": stall_days, "terminal": key in TERMINAL}


def _reason(key, en, zh):
    return {"key": key, "labels": {"en": en, "zh-CN": zh}}


# The lost reasons a pipeline offers when it names none (metrics labels them by key).
DEFAULT_LOST_REASONS = [
    _reason("price", "Price", "价格"),
    _reason("competitor", "Went with a competitor", "选择了竞争对手"),
    _reason("no_budget", "No budget", "没有预算"),
    _reason("no_decision", "No decision", "未做决定"),
    _reason("timing", "Timing", "时机不对"),
    _reason("no_response", "No response", "无回应"),
    _reason("lost_contact", "Lost contact", "失去联系"),
    _reason("other", "Other", "其他"),
]


def reasons_in(loaded):
    """Lost reasons as stored, from PipelineIn's (None: the default picklist)."""
    if loaded is None:
        return None
    return reasons.with_other([{"key": r["key"], "labels": {
        "en": r["labels"]["en"], "zh-CN": r["labels"]["zh_cn"]}} for r in loaded])


def lost_reasons(pipeline):
    """The pipeline's lost-reason picklist ("other" always last)."""
    return reasons.with_other(pipeline.get("lost_reasons") or DEFAULT_LOST_REASONS)


def default_pipeline():
    """The pipeline seeded on first start (the sales process of the issue)."""
    return {
        "_id": DEFAULT_PIPELINE_ID,
        "name": "Default sales pipeline",
        "stages": [
            _stage("discovery", "Discovery", 10, stall_days=14),
            _stage("needs_confirmed", "Needs confirmed", 25, stall_days=14,
                   checklist=["discovery_call_held"]),
            _stage("proposal", "Proposal", 50, stall_days=14, fields=["needs_summary"]),
            _stage("quote_negotiation", "Quote & negotiation", 70, stall_days=10,
                   fields=["amount", "currency"]),
            _stage("contract_payment", "Contract & payment", 90, stall_days=14,
                   fields=["accepted_quote"]),
            # a first payment too, where the business wants it: add "first_payment"
            _stage(WON, "Won", 100, fields=["amount", "currency", "contract_signed"]),
            _stage(LOST, "Lost", 0),
        ],
        "lost_reasons": DEFAULT_LOST_REASONS,
    }


def validate_stages(stages):
    """Rule errors of a pipeline's stage list as {field: [messages]} (empty when valid)."""
    errors = []
    keys = [s["key"] for s in stages]
    if len(keys) > MAX_STAGES:
        errors.append(f"At most {MAX_STAGES} stages (won and lost included), got {len(keys)}.")
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        errors.append(f"Duplicate stage keys: {', '.join(dupes)}.")
    for key in TERMINAL:
        if key not in keys:
            errors.append(f"The terminal stage {key!r} is required.")
    if keys[-2:] and set(keys[-2:]) != set(TERMINAL):
        errors.append("The stages 'won' and 'lost' must come last.")
    if not [k for k in keys if k not in TERMINAL]:
        errors.append("At least one open stage is required.")
    for stage in stages:
        for name in stage.get("required_fields", []) + stage.get("required_checklist", []):
            if not KEY.match(name):
                errors.append(f"{stage['key']}: {name!r} is not a valid field or item key.")
        if stage["key"] == WON and stage.get("probability") != 100:
            errors.append("The stage 'won' must have probability 100.")
        if stage["key"] == LOST and stage.get("probability") != 0:
            errors.append("The stage 'lost' must have probability 0.")
    return {"stages": errors} if errors else {}


def normalise(stages):
    """Stages as stored: defaults filled in, `terminal` derived from the key."""
    return [_stage(s["key"], s["name"], s["probability"], s.get("stall_days"),
                   s.get("required_fields", ()), s.get("required_checklist", ()))
            for s in stages]


def stage_of(pipeline, key):
    for stage in pipeline["stages"]:
        if stage["key"] == key:
            return stage
    return None


def open_stages(pipeline):
    return [s for s in pipeline["stages"] if not s["terminal"]]


def first_stage(pipeline):
    return open_stages(pipeline)[0]


def checklist_items(pipeline):
    """Every checklist item some stage of this pipeline asks for (the tickable ones)."""
    items = []
    for stage in pipeline["stages"]:
        for item in stage["required_checklist"]:
            if item not in items:
                items.append(item)
    return items


def is_set(value):
    if value is None:
        return False
    if isinstance(value, str | list | dict):
        return bool(value.strip() if isinstance(value, str) else value)
    return True


def field_value(deal, name):
    if name in STANDARD_FIELDS:
        return deal.get(name)
    return (deal.get("custom") or {}).get(name)


def gates_for_move(pipeline, from_key, to_key):
    """The stages whose gates a move from `from_key` (None for a new deal) to `to_key`
    must meet: the target, plus the open stages skipped on the way forward (a win from
    an open stage skips every open stage after it)."""
    target = stage_of(pipeline, to_key)
    opens = [s["key"] for s in open_stages(pipeline)]
    if to_key == WON and from_key in opens:
        return [stage_of(pipeline, k) for k in opens[opens.index(from_key) + 1:]] + [target]
    if target["terminal"] or to_key not in opens:
        return [target]
    end = opens.index(to_key)
    start = opens.index(from_key) + 1 if from_key in opens else 0
    if from_key is not None and from_key not in opens:
        start = end  # leaving a terminal stage (reopen): only the target's gate
    return [stage_of(pipeline, k) for k in opens[start:end]] + [target]


def missing_for(pipeline, deal, from_key, to_key):
    """What keeps `deal` out of `to_key`: {"fields": [...], "checklist": [...]}, in gate
    order, without repeats; both empty when the move is allowed."""
    fields, checklist = [], []
    ticked = set(deal.get("checklist") or [])
    for stage in gates_for_move(pipeline, from_key, to_key):
        for name in stage["required_fields"]:
            if not is_set(field_value(deal, name)) and name not in fields:
                fields.append(name)
        for item in stage["required_checklist"]:
            if item not in ticked and item not in checklist:
                checklist.append(item)
    return {"fields": fields, "checklist": checklist}


def removed_stages(pipeline, stages):
    """Keys of the stages an edit of `pipeline` to `stages` removes."""
    return sorted({s["key"] for s in pipeline["stages"]} - {s["key"] for s in stages})


def check_edit(removed, open_deals_in_removed):
    """An edit may remove only stages no open deal sits in: such deals would be stranded."""
    if removed and open_deals_in_removed:
        raise Conflict("Open deals are in stages this edit removes; move them first.",
                       stages=list(removed))
