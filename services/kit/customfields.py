"""Typed custom fields, pure: the definitions admins make, and values checked against them.

A definition: {key, entity, type, labels {"en", "zh-CN"}, options (picklists: [{key,
labels}]), min/max (numbers), max_length (text), currency (money), help}. Types:
- text: a string of at most max_length characters;
- number: an integer or a decimal string ("12.5"), within min/max;
- money: a decimal string with exactly the definition's currency's minor units;
- date: "YYYY-MM-DD";
- picklist: one option key; multi_picklist: a list of distinct option keys;
- boolean: true or false.
Null removes a value. Keys no definition names stay free values (older data, and keys
a service sets itself). Whether a field is required is not a property of the field but
of a process step: a pipeline's stage gate names it (deals.pipelines), one place per rule.
"""
import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from kit import money

TYPES = ("text", "number", "money", "date", "picklist", "multi_picklist", "boolean")
ENTITIES = ("lead", "account", "contact", "deal")
LOCALES = ("en", "zh-CN")
KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
PICKLISTS = ("picklist", "multi_picklist")
DEFAULT_MAX_LENGTH = 1000
MAX_OPTIONS = 200


def definition_errors(definition, reserved=()):
    """{field: [messages]} of what is wrong with a definition (empty when nothing)."""
    errors = {}
    key, kind = definition.get("key") or "", definition.get("type")
    if not KEY.match(key):
        errors["key"] = ["1-64 lower-case letters, digits or '_', starting with a letter."]
    elif key in reserved:
        errors["key"] = [f"{key!r} is a standard field."]
    labels = definition.get("labels") or {}
    missing = [loc for loc in LOCALES if not (labels.get(loc) or "").strip()]
    if missing:
        errors["labels"] = [f"A label in each of {', '.join(LOCALES)} is required "
                            f"(missing: {', '.join(missing)})."]
    options = definition.get("options") or []
    if kind in PICKLISTS:
        keys = [o.get("key") for o in options]
        if not options:
            errors["options"] = ["A picklist needs at least one option."]
        elif len(keys) > MAX_OPTIONS or len(set(keys)) != len(keys) or not all(
                isinstance(k, str) and KEY.match(k) for k in keys):
            errors["options"] = [f"At most {MAX_OPTIONS} options with distinct keys "
                                 "(lower-case letters, digits, '_')."]
    elif options:
        errors["options"] = ["Only picklists have options."]
    if kind == "money" and definition.get("currency") not in money.TENDER:
        errors["currency"] = ["A money field needs a tender ISO 4217 currency."]
    low, high = definition.get("min"), definition.get("max")
    if (low is not None or high is not None) and kind != "number":
        errors["min"] = ["Only numbers have min and max."]
    elif low is not None and high is not None and Decimal(str(low)) > Decimal(str(high)):
        errors["min"] = ["Must not be more than max."]
    return errors


def _number(value):
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value, Decimal(value)
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError
    return format(number, "f"), number


def check_value(definition, value):
    """The value as stored, or ValueError with a message."""
    kind = definition["type"]
    if kind == "text":
        limit = definition.get("max_length") or DEFAULT_MAX_LENGTH
        if not isinstance(value, str):
            raise ValueError("Must be text.")
        if len(value) > limit:
            raise ValueError(f"At most {limit} characters.")
        return value
    if kind == "number":
        try:
            stored, number = _number(value)
        except (ValueError, TypeError, InvalidOperation):
            raise ValueError("Must be a number (an integer or a decimal string).") from None
        for bound, ok, word in (("min", lambda b: number >= b, "less"),
                                ("max", lambda b: number <= b, "more")):
            if definition.get(bound) is not None and not ok(Decimal(str(definition[bound]))):
                raise ValueError(f"Must not be {word} than {definition[bound]}.")
        return stored
    if kind == "money":
        try:
            amount = Decimal(value) if isinstance(value, str) else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or amount < 0 or amount >= \
                money.MAX_AMOUNT or "e" in value.lower():
            raise ValueError("Must be an amount as a decimal string such as \"1234.50\".")
        return str(money.in_currency(amount, definition["currency"]))
    if kind == "date":
        try:
            return dt.date.fromisoformat(value).isoformat() if isinstance(value, str) and \
                len(value) == 10 else _bad_date()
        except ValueError:
            _bad_date()
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError("Must be true or false.")
        return value
    allowed = [o["key"] for o in definition.get("options") or ()]
    if kind == "picklist":
        if value not in allowed:
            raise ValueError(f"Must be one of: {', '.join(allowed)}.")
        return value
    if not isinstance(value, list) or len(set(value)) != len(value) or \
            any(v not in allowed for v in value):
        raise ValueError(f"Must be a list of distinct options of: {', '.join(allowed)}.")
    return list(value)


def _bad_date():
    raise ValueError("Must be a date as YYYY-MM-DD.")


def check_values(definitions, values):
    """(values as stored, {key: [message]}): each defined key's value checked by its type;
    null (a removal) and undefined keys pass as they are."""
    out, errors = {}, {}
    for key, value in (values or {}).items():
        definition = definitions.get(key)
        if definition is None or value is None:
            out[key] = value
            continue
        try:
            out[key] = check_value(definition, value)
        except ValueError as exc:
            errors[key] = [str(exc)]
    return out, errors


def stored(data, entity, now, actor=None):
    """The stored definition of a loaded FieldIn body (kit.customfield_schemas)."""
    def labels(loaded):
        return {"en": loaded["en"], "zh-CN": loaded["zh_cn"]}

    return {
        "_id": f"{entity}:{data['key']}", "key": data["key"], "entity": entity,
        "type": data["type"], "labels": labels(data["labels"]),
        "options": [{"key": o["key"], "labels": labels(o["labels"])}
                    for o in data.get("options") or ()],
        # decimal strings: FerretDB v1 has no Decimal128
        **{b: None if data.get(b) is None else str(data[b]) for b in ("min", "max")},
        "max_length": data.get("max_length"), "currency": data.get("currency"),
        "created_at": now, "created_by": actor,
    }


def label(definition, locale="en"):
    labels = definition.get("labels") or {}
    return labels.get(locale) or labels.get("en") or definition["key"]


def json_schema(definition):
    """The OpenAPI (JSON Schema) description of a defined field's value."""
    kind = definition["type"]
    schema = {
        "text": {"type": "string",
                 "maxLength": definition.get("max_length") or DEFAULT_MAX_LENGTH},
        "number": {"oneOf": [{"type": "integer"},
                             {"type": "string", "pattern": r"^-?[0-9]{1,30}(\.[0-9]{1,30})?$"}]},
        "money": {"type": "string", "pattern": _money_pattern(definition.get("currency"))},
        "date": {"type": "string", "format": "date"},
        "boolean": {"type": "boolean"},
        "picklist": {"type": "string",
                     "enum": [o["key"] for o in definition.get("options") or ()]},
        "multi_picklist": {"type": "array", "uniqueItems": True, "items": {
            "type": "string", "enum": [o["key"] for o in definition.get("options") or ()]}},
    }[kind]
    labels = definition.get("labels") or {}
    return {**schema, "nullable": True, "title": labels.get("en") or definition["key"],
            "description": " / ".join(labels.get(loc) for loc in LOCALES if labels.get(loc))
            + f" ({kind})"}


def _money_pattern(currency):
    places = money.MINOR_UNITS.get(currency, 2)
    digits = len(str(money.MAX_AMOUNT)) - 1
    return rf"^[0-9]{{1,{digits}}}" + (rf"(\.[0-9]{{1,{places}}})?$" if places else "$")


# --- values as text (a CSV cell, an HTML form field) -----------------------------------------

# what a spreadsheet or a form says for a boolean, in English and Chinese
TRUE_WORDS = frozenset(("true", "yes", "y", "1", "是", "真", "对", "有"))
FALSE_WORDS = frozenset(("false", "no", "n", "0", "否", "假", "错", "无"))
# a multi-picklist cell lists its options with any of these (ASCII and full-width)
LIST_SEPARATORS = re.compile(r"\s*[;,|，；、]\s*")


def by_name(definitions):
    """{name: definition}: each field under its key and its labels (a CSV header or a form
    field may be the label a team sees, e.g. 席位); a key wins over another field's label."""
    names = {}
    for definition in definitions.values():
        for text in (definition.get("labels") or {}).values():
            if text:
                names.setdefault(text.strip(), definition)
    names.update(definitions)
    return names


def from_text(definition, value):
    """A value given as text, in its type's form: booleans from words, a multi-picklist
    from a separated list, picklist options by key or label; the rest as given (the type
    check follows)."""
    if not isinstance(value, str):
        return value
    kind, text = definition["type"], value.strip()
    if kind == "boolean":
        word = text.lower()
        return True if word in TRUE_WORDS else False if word in FALSE_WORDS else value
    if kind == "number":
        return text
    if kind in PICKLISTS:
        options = {}
        for option in definition.get("options") or ():
            options.update({label.strip(): option["key"]
                            for label in (option.get("labels") or {}).values() if label})
            options[option["key"]] = option["key"]
        if kind == "picklist":
            return options.get(text, text)
        return [options.get(part, part) for part in LIST_SEPARATORS.split(text) if part]
    return text


def check_text_values(definitions, values):
    """(values as stored, {name as given: [message]}) of values that came as text: each
    name resolved to its field (key or label), converted (from_text) and checked; names
    no definition knows pass as they are."""
    names = by_name(definitions)
    out, errors, given = {}, {}, {}
    for name, value in (values or {}).items():
        definition = names.get(name.strip() if isinstance(name, str) else name)
        if definition is None or value is None:
            out[name] = value
            continue
        key = definition["key"]
        if key in given:
            errors[name] = [f"The field {key!r} is given twice (as {given[key]!r})."]
            continue
        given[key] = name
        try:
            out[key] = check_value(definition, from_text(definition, value))
        except ValueError as exc:
            errors[name] = [str(exc)]
    return out, errors
