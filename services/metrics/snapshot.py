"""Snapshots of an instance's KPI state, so a restart reads the state, not the history.

A snapshot holds exactly what the in-memory state holds: the series sums, every entity's
revision and contribution (to swap it out exactly when the entity changes later), the
cohort inputs and tallies, and the watermark it covers (every projection written before
it is in the snapshot at its latest revision: the `since` of the refresh that preceded
it, which already subtracts the clock-skew overlap). A restart loads it and re-reads only
the projections stamped `updated_at` from the watermark on, newer revisions replacing
older ones as in any refresh, so the result is the same as reading everything.

Encoding: JSON, zlib-compressed, then cut into chunks below MongoDB's document limit by
the store. Series keys are numbered once per snapshot (`keys`); a contribution is the
string "k:v,k:v" (v an integer, or "d" + a Decimal). Restored contributions stay in that
form until their entity changes (decoding 100,000 of them at start is what we avoid).
Pure: no nameko, no pymongo.
"""
import datetime as dt
import hashlib
import json
import zlib
from decimal import Decimal

from metrics.cohorts import Cohorts
from metrics.domain import Aggregates, key

# 2: deal activities and tasks are projections of their own, leads contribute recycling
VERSION = 2


class SnapshotError(Exception):
    """The snapshot cannot be used (corrupt, another format or other rules)."""


class Codec:
    """Numbers series keys (append-only, so restored encoded contributions stay valid)."""

    def __init__(self, keys=()):
        self.keys = []
        self.index = {}
        for name, labels in keys:
            self._number(key(name, *labels))

    def _number(self, k):
        n = self.index.get(k)
        if n is None:
            n = self.index[k] = len(self.keys)
            self.keys.append(k)
        return n

    def encode(self, contrib):
        parts = []
        for i in range(0, len(contrib), 2):
            value = contrib[i + 1]
            text = f"d{value}" if isinstance(value, Decimal) else str(int(value))
            parts.append(f"{self._number(contrib[i])}:{text}")
        return ",".join(parts)

    def decode(self, text):
        if not text:
            return ()
        keys, out = self.keys, []
        for part in text.split(","):
            n, value = part.split(":", 1)
            out.append(keys[int(n)])
            out.append(Decimal(value[1:]) if value[0] == "d" else int(value))
        return tuple(out)


def fingerprint(rules, bucket_seconds):
    """What the stored contributions depend on: a snapshot of other rules is not used."""
    return hashlib.sha256(json.dumps([
        VERSION, rules.lead_stages, rules.deal_stages, rules.won_stage, rules.funnel_pipeline,
        rules.lead_sources, rules.lost_reasons, sorted(rules.bucket_micros.items()),
        bucket_seconds]).encode()).hexdigest()


def capture(state, cohorts):
    """A consistent copy of the state, cheap enough to take without yielding (the
    contributions are immutable; the cohort tallies are copied as lists)."""
    return ({kind: dict(entities) for kind, entities in state.entities.items()},
            dict(state.values), cohorts.dump())


def encode(captured, codec, watermark, print_):
    """Compressed snapshot bytes of a captured state."""
    entities, values, cohorts = captured
    payload = {
        "version": VERSION,
        "rules": print_,
        "watermark": watermark.isoformat(),
        "values": codec.encode(tuple(x for item in values.items() for x in item)),
        "entities": {kind: [[entity_id, rev, c if isinstance(c, str) else codec.encode(c)]
                            for entity_id, (rev, c) in known.items()]
                     for kind, known in entities.items()},
        "cohorts": cohorts,
    }
    payload["keys"] = [[name, list(labels)] for name, labels in codec.keys]
    return zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 1)


def checksum(blob):
    return hashlib.sha256(blob).hexdigest()


def decode(blob, print_, rules, bucket_seconds):
    """(Aggregates, Cohorts, watermark, Codec) of snapshot bytes; SnapshotError when they
    are unusable (the caller then reads every projection)."""
    try:
        payload = json.loads(zlib.decompress(blob))
        if payload["version"] != VERSION or payload["rules"] != print_:
            raise SnapshotError("the snapshot was written for other rules or another format")
        codec = Codec(payload["keys"])
        state = Aggregates(decode=codec.decode)
        values = codec.decode(payload["values"])
        state.values = dict(zip(values[::2], values[1::2], strict=True))
        for kind, known in payload["entities"].items():
            state.entities[kind] = {entity_id: (rev, c) for entity_id, rev, c in known}
        cohorts = Cohorts.load(payload["cohorts"], rules, bucket_seconds)
        watermark = dt.datetime.fromisoformat(payload["watermark"])
    except SnapshotError:
        raise
    except (zlib.error, ValueError, KeyError, TypeError, IndexError) as exc:
        raise SnapshotError(f"the snapshot is corrupt: {exc!r}") from exc
    return state, cohorts, watermark, codec
