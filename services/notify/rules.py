"""Notification rules from configuration: event type (+ conditions on its data) ->
template -> recipients -> channels. Pure: parsing, checking, matching, and laying the
admin API's rules over the configured ones."""
import re
from dataclasses import dataclass, field

from kit.errors import Invalid

PERSON_CHANNELS = ("email", "sms")
TEAM_CHANNELS = ("dingtalk", "wecom")
CHANNELS = PERSON_CHANNELS + TEAM_CHANNELS
PLAIN_RECIPIENTS = ("owner", "manager", "customer", "team")
PREFIXED_RECIPIENTS = ("role:", "person:", "channel:")
OPERATORS = ("in", "not_in", "present")
# a rule's name is a key in stored documents and part of notification keys; a condition
# names a field of the event's data (snake_case, as the catalog's are)
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
FIELD = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")


def _text(value):
    """A string that can be stored (UTF-8: no lone surrogates)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _scalar(value):
    return value is None or isinstance(value, (bool, int)) or _text(value)


def _condition(key, condition):
    if not (isinstance(key, str) and FIELD.match(key)):
        return False
    if not isinstance(condition, dict):
        return _scalar(condition)
    return bool(condition) and all(
        (op == "present" and isinstance(v, bool))
        or (op in ("in", "not_in") and isinstance(v, list) and all(map(_scalar, v)))
        for op, v in condition.items())


@dataclass(frozen=True)
class Rule:
    name: str
    event: str
    template: str
    recipients: tuple
    channels: tuple
    when: dict = field(default_factory=dict)
    enabled: bool = True

    def matches(self, event_type, data):
        return self.enabled and event_type == self.event and all(
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
        if not _text(raw.get(key)) or not raw.get(key):
            errors[key] = ["Required, a non-empty string."]
    if "name" not in errors and not NAME.match(raw["name"]):
        errors["name"] = ["Lower-case letters, digits, _ and -, at most 64."]
    if not isinstance(raw.get("enabled", True), bool):
        errors["enabled"] = ["true or false."]
    if templates is not None and isinstance(raw.get("template"), str) \
            and raw["template"] not in templates:
        errors["template"] = [f"No template {raw['template']!r}."]
    recipients = raw.get("recipients")
    if not isinstance(recipients, list) or not recipients or not all(
            _text(r) and (r in PLAIN_RECIPIENTS or (
                r.startswith(PREFIXED_RECIPIENTS) and r.split(":", 1)[1]))
            for r in recipients):
        errors["recipients"] = [f"A non-empty list of {', '.join(PLAIN_RECIPIENTS)}, "
                                "role:<role>, person:<sub> or channel:<name>."]
    channels = raw.get("channels")
    if not isinstance(channels, list) or not channels or not set(channels) <= set(CHANNELS):
        errors["channels"] = [f"A non-empty list of {', '.join(CHANNELS)}."]
    when = raw.get("when") or {}
    if not isinstance(when, dict) or not all(_condition(k, c) for k, c in when.items()):
        errors["when"] = ["A map of a data field (snake_case) -> a value, or -> {in: [..]}, "
                          "{not_in: [..]}, {present: true|false}; values are strings, "
                          "numbers, booleans or null."]
    if errors:
        raise Invalid(f"Rule {raw.get('name')!r} is invalid.", errors=errors)
    return Rule(name=raw["name"], event=raw["event"], template=raw["template"],
                recipients=tuple(recipients), channels=tuple(channels), when=dict(when),
                enabled=raw.get("enabled", True))


def parse_rules(doc, templates=None):
    rules = [parse_rule(raw, templates) for raw in (doc or {}).get("rules") or []]
    names = [r.name for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise Invalid(f"Rule names must be unique: {', '.join(duplicates)}.")
    return rules


def matching(rules, event_type, data):
    return [rule for rule in rules if rule.matches(event_type, data)]


def effective(configured, stored, templates=None):
    """The configured rules with the admin API's laid over them by name (a stored rule
    replaces the configured one of its name; `enabled: false` switches one off), in
    configuration order, then the added ones by name. A stored rule that no longer parses
    (its template was removed) is left out rather than stopping every notification."""
    over = {}
    for name, raw in sorted((stored or {}).items()):
        try:
            over[name] = parse_rule({**raw, "name": name}, templates)
        except Invalid:
            continue
    rules = [over.pop(rule.name, rule) for rule in configured]
    return rules + [over[name] for name in sorted(over)]


def as_dict(rule):
    return {"name": rule.name, "event": rule.event, "when": dict(rule.when),
            "template": rule.template, "recipients": list(rule.recipients),
            "channels": list(rule.channels), "enabled": rule.enabled}
