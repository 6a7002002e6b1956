"""Limits on what a request may carry, the same for every service (config: HTTP.*).

A body is read at most `max_body_bytes` (413 before reading when Content-Length says more,
and while reading a chunked body); a parsed JSON body may nest at most `max_json_depth`
levels and carry only integers that fit in 64 bits and text that is valid Unicode, which is
all BSON can store: a larger integer raised OverflowError deep in pymongo, a lone surrogate
("\\ud800", which JSON's escapes can spell) UnicodeEncodeError, each a 500 instead of a 400.
"""
import re
from dataclasses import dataclass

from marshmallow import ValidationError

from kit.config import setting
from kit.errors import Invalid

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# json.loads leaves a surrogate only when it has no partner: a pair becomes one character
_SURROGATE = re.compile(r"[\ud800-\udfff]")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_048_576
    max_url_bytes: int = 8192
    max_json_depth: int = 32

    @classmethod
    def from_config(cls, config):
        return cls(**{name: int(setting(config, f"HTTP.{name}", default))
                      for name, default in cls().__dict__.items()})


def check_json(data, max_depth):
    """Refuse nesting deeper than `max_depth` (400), text that is not valid Unicode (400)
    and integers outside the 64-bit range (400 naming each field). Iterative: the check
    itself must not recurse."""
    errors = {}
    stack = [(data, (), 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict):
            children = value.items()
            if any(map(_SURROGATE.search, value)):
                raise _not_unicode()
        elif isinstance(value, list):
            children = enumerate(value)
        elif isinstance(value, str):
            if _SURROGATE.search(value):
                raise _not_unicode()
            continue
        else:
            if (isinstance(value, int) and not isinstance(value, bool)
                    and not INT64_MIN <= value <= INT64_MAX):
                _put(errors, path, "Integers must lie between -2^63 and 2^63-1.")
            continue
        if depth > max_depth:
            raise Invalid(f"The body nests deeper than {max_depth} levels.")
        stack.extend((child, (*path, key), depth + 1) for key, child in children)
    if errors:
        raise ValidationError(errors)


def _not_unicode():
    # no field named: the name itself may be the text the response could not encode
    return Invalid("The body holds text that is not valid Unicode: a lone surrogate such "
                   "as \\ud800 (of a pair, one half alone).")


def _put(errors, path, message):
    """Nest the message as marshmallow does: {"custom": {"big": [message]}}."""
    node = errors
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node.setdefault(path[-1] if path else "_schema", []).append(message)
