"""Lead scoring: config rules (field conditions, activity types) give points, a grade and
the list of rules that fired, so a rep can see why a lead scored what it did."""
from dataclasses import dataclass
from typing import Any

FIELD_OPS = ("present", "absent", "equals", "in", "not_in", "endswith", "not_endswith")
GRADES = ("A", "B", "C")  # D is whatever scores below C's threshold


class RuleError(ValueError):
    """A scoring rule in the config is malformed (caught at start-up, not per request)."""


@dataclass(frozen=True)
class ScoringRule:
    name: str
    points: int
    field: str | None = None
    op: str = "present"
    value: Any = None
    activity: str | None = None
    min_count: int = 1


def parse_rules(raw):
    rules = []
    for item in raw or []:
        try:
            rule = ScoringRule(
                name=str(item["name"]),
                points=int(item["points"]),
                field=item.get("field"),
                op=item.get("op", "present"),
                value=_as_tuple(item.get("value")),
                activity=item.get("activity"),
                min_count=int(item.get("min_count", 1)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RuleError(f"scoring rule {item!r}: {exc}") from None
        if (rule.field is None) == (rule.activity is None):
            raise RuleError(f"scoring rule {rule.name}: give exactly one of field, activity")
        if rule.field is not None and rule.op not in FIELD_OPS:
            raise RuleError(f"scoring rule {rule.name}: unknown op {rule.op!r}")
        rules.append(rule)
    return rules


def parse_grades(raw):
    grades = {g: int(v) for g, v in (raw or {}).items()}
    if set(grades) != set(GRADES):
        raise RuleError(f"grades must give thresholds for exactly {GRADES}")
    if not grades["A"] >= grades["B"] >= grades["C"]:
        raise RuleError("grade thresholds must not increase from A to C")
    return grades


def _as_tuple(value):
    if value is None or isinstance(value, (list, tuple)):
        return tuple(value) if value is not None else None
    return (value,)


def _lookup(lead, path):
    """`utm.source` and `custom.industry` reach into the nested maps."""
    node = lead
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _text(value):
    return str(value).strip().lower()


def _field_fires(rule, lead):
    value = _lookup(lead, rule.field)
    present = value is not None and _text(value) != ""
    if rule.op == "present":
        return present
    if rule.op == "absent":
        return not present
    if not present:
        return False
    wanted = [_text(v) for v in rule.value or ()]
    text = _text(value)
    if rule.op in ("equals", "in"):
        return text in wanted
    if rule.op == "not_in":
        return text not in wanted
    if rule.op == "endswith":
        return any(text.endswith(w) for w in wanted)
    return not any(text.endswith(w) for w in wanted)  # not_endswith


def counts_of(activities):
    """{activity type: how many} of a list of activities."""
    counts = {}
    for activity in activities:
        counts[activity.get("type")] = counts.get(activity.get("type"), 0) + 1
    return counts


def _activity_fires(rule, counts):
    return counts.get(rule.activity, 0) >= rule.min_count


def score(lead, activities, rules, grades):
    """Returns (points, grade, names of the rules that fired, in config order).
    `activities`: how many of each type the lead has ({type: n}), or the activities."""
    counts = activities if isinstance(activities, dict) else counts_of(activities)
    fired = [
        rule for rule in rules
        if (_field_fires(rule, lead) if rule.field else _activity_fires(rule, counts))
    ]
    points = sum(rule.points for rule in fired)
    return points, grade_for(points, grades), [rule.name for rule in fired]


def grade_for(points, grades):
    for grade in GRADES:
        if points >= grades[grade]:
            return grade
    return "D"
