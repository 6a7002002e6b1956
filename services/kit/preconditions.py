"""Optimistic concurrency over HTTP: the ETag is the version, If-Match is required.

An entity's version (a deal's, a pipeline's, a lead's) is also the sequence of its last
event, so `ETag: "7"` means "the state after event 7". A mutating request must say which
version it changes: no If-Match is 428, a stale one is 409 (the caller re-reads and
decides again), never a silent overwrite.
"""
import re

from kit.errors import PreconditionRequired
from kit.limits import INT64_MAX
from kit.versioned import Stale, stale

_TAG = re.compile(r'^\s*(?:W/)?"?(\d+)"?\s*$')


def etag(version):
    return {"ETag": f'"{version}"'}


def if_match(request, *, required=True):
    """The version the If-Match header names; without one 428, or None when not
    `required` (routes where the precondition is optional)."""
    raw = request.headers.get("If-Match")
    if raw is None:
        if not required:
            return None
        raise PreconditionRequired(
            'This change needs an If-Match header with the ETag you read, e.g. If-Match: "3".')
    match = _TAG.match(raw)
    if match is None:
        raise PreconditionRequired(
            f'If-Match must be one version ETag such as "3", got {raw!r}.')
    version = int(match.group(1))
    if version > INT64_MAX:
        # versions are stored as BSON int64: a larger one matches none, and handed to
        # MongoDB in a filter it was an OverflowError (a 500)
        raise Stale(f"If-Match {match.group(1)} names a version no entity can have; read it "
                    "again and retry.")
    return version


def check_version(entity, expected, what="deal"):
    if entity["version"] != expected:
        raise stale(entity["version"], expected, what)

