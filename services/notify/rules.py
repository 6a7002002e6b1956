"""Notification rules from configuration: event type (+ conditions on its data) ->
template -> recipients -> channels. Pure: parsing, checking and matching."""
from dataclasses import dataclass, field

from kit.errors import Invalid

PERSON_CHANNELS = ("email", "sms")
TEAM_CHANNELS = ("dingtalk", "wecom")
CHANNELS = PERSON_CHANNELS + TEAM_CHANNELS
PLAIN_RECIPIENTS = ("owner", "manager", "customer", "team")
PREFIXED_RECIPIENTS = ("role:", "person:", "channel:")
OPERATORS = ("in", "not_in", "present")


@dataclass(frozen=True)
class Rule:
    name: str
    event: str
    template: str
    recipients: tuple
    channels: tuple
    when: dict = field(default_factory=dict)

    def matches(self, event_type, data):
        return event_type == self.event and all(
            holds(data.get(key), condition) for key, condition in self.when.items())


def holds(value, condition):
    if not isinstance(condition, dict):
        return value == condition
    for op, operand in condition.items():
        if op == "in" and value not in operand:
            return False
        if op == "not_in" and value in operand:
            return False
        if op == "present" and (value is not None) != bool(operand):
            return False
    return True


def parse_rule(raw, templates=None):
    """A Rule from its configuration (or admin API) form; Invalid says which field is wrong."""
    errors = {}
    raw = raw if isinstance(raw, dict) else {}
    for key in ("name", "event", "template"):
        if not isinstance(raw.get(key), str) or not raw.get(key):
            errors[key] = ["Required, a non-empty string."]
    if templates is not None and isinstance(raw.get("template"), str) \
            and raw["template"] not in templates:
        errors["template"] = [f"No template {raw['template']!r}."]
    recipients = raw.get("recipients")
    if not isinstance(recipients, list) or not recipients or not all(
            isinstance(r, str) and (r in PLAIN_RECIPIENTS or (
                r.startswith(PREFIXED_RECIPIENTS) and r.split(":", 1)[1]))
            for r in recipients):
        errors["recipients"] = [f"A non-empty list of {', '.join(PLAIN_RECIPIENTS)}, "
                                "role:<role>, person:<sub> or channel:<name>."]
    channels = raw.get("channels")
    if not isinstance(channels, list) or not channels or not set(channels) <= set(CHANNELS):
        errors["channels"] = [f"A non-empty list of {', '.join(CHANNELS)}."]
    when = raw.get("when") or {}
    if not isinstance(when, dict) or not all(
            not isinstance(c, dict) or (c and set(c) <= set(OPERATORS)
                                        and all(op == "present" or isinstance(v, list)
                                                for op, v in c.items()))
            for c in when.values()):
        errors["when"] = ["A map of field -> value, or -> {in: [..]}, {not_in: [..]}, "
                          "{present: true|false}."]
    if errors:
        raise Invalid(f"Rule {raw.get('name')!r} is invalid.", errors=errors)
    return Rule(name=raw["name"], event=raw["event"], template=raw["template"],
                recipients=tuple(recipients), channels=tuple(channels), when=dict(when))


def parse_rules(doc, templates=None):
    rules = [parse_rule(raw, templates) for raw in (doc or {}).get("rules") or []]
    names = [r.name for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise Invalid(f"Rule names must be unique: {', '.join(duplicates)}.")
    return rules


def matching(rules, event_type, data):
    return [rule for rule in rules if rule.matches(event_type, data)]
