"""Rebuild the projections from the event streams into a fresh set, then switch over.

One rebuild at a time (an atomic claim on the control record, kept alive by a heartbeat;
a claim whose heartbeat stopped is taken over, and the set it was filling dropped):
1. read every producer stream (`<service>.events.stream`) from its first message up to
   its tail, applying each event the service handles with the store's own `apply` into
   a fresh set of projections `<database>_r<id>` (collections prefixed `r<id>_` in the
   service's own database: its credentials reach no other); the live service keeps
   serving from the active set meanwhile;
2. read the new projections once into KPI state, and write it there as a snapshot;
3. switch: the control record names the new set active. This process follows at
   once, every other instance at its next refresh (`KPIS.refresh_seconds`), restoring from
   that snapshot and re-reading what changed since;
4. after `REBUILD.switch_grace_seconds`, read the streams on from where step 1 stopped:
   events an instance applied to the old set before it followed are in the streams,
   so they reach the new one too (apply is idempotent: an event it has is not applied
   twice). The old set stays as `previous`; the one before it is dropped.
Idempotent: the result is a function of the streams. Restartable: a rebuild that died
leaves the active set as it was, and the next one starts over.

`python -m metrics.rebuild [config.yml]` (`make replay`) runs one in the foreground;
`POST /api/v1/admin/rebuild` starts one inside the service.
"""
import datetime as dt
import json
import logging
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import eventlet
from nameko.extensions import DependencyProvider
from pymongo import MongoClient

from kit.config import load_config, setting
from kit.fields import utcnow
from kit.mongo import Store
from metrics import snapshot
from metrics.cohorts import Cohorts
from metrics.domain import KEEP, Aggregates, Rules, contribution
from metrics.replay import StreamReader, parsed, streams_of
from metrics.store import PROJECTIONS, MetricsStore

log = logging.getLogger(__name__)

# the event types the service applies (its handlers: one per KEEP entry)
APPLIED = frozenset(KEEP)


class ClaimLost(Exception):
    """Another rebuild took over (this one's heartbeat was taken as stopped)."""


class HistoryTruncated(Exception):
    """A stream's retention dropped its beginning: a rebuild would miss those events."""


def kpi_state(store, rules, bucket_seconds):
    """(Aggregates, Cohorts, Codec) of every projection in `store`, as an instance
    restores them without a snapshot."""
    codec = snapshot.Codec()
    state, cohorts = Aggregates(decode=codec.decode), Cohorts(rules, bucket_seconds)
    for kind in PROJECTIONS:
        for doc in store.all_projections(kind):
            state.replace(kind, doc["_id"], doc.get("rev", 0), contribution(kind, doc, rules))
            cohorts.absorb(kind, doc)
    return state, cohorts, codec


class Rebuild:
    def __init__(self, store, config, *, sleep=eventlet.sleep, clock=utcnow):
        self.store = store
        self.sleep = sleep
        self.clock = clock
        kpis = setting(config, "KPIS")
        self.rules = Rules.from_config(kpis)
        self.bucket_seconds = float(kpis.get("cohort_bucket_seconds", 86400))
        self.overlap = dt.timedelta(seconds=float(kpis.get("refresh_overlap_seconds", 15)))
        self.chunk_bytes = int(kpis.get("snapshot_chunk_bytes", 4 << 20))
        self.grace = float(setting(config, "REBUILD.switch_grace_seconds", 15))
        self.workers = int(setting(config, "REBUILD.workers", 4))
        self.allow_truncated = bool(setting(config, "REBUILD.allow_truncated", False))
        self.heartbeat = float(setting(config, "REBUILD.heartbeat_seconds", 5))
        self.stale = dt.timedelta(seconds=float(setting(config, "REBUILD.stale_seconds", 60)))
        self.reader = StreamReader(config["AMQP_URI"],
                                   prefetch=setting(config, "REBUILD.prefetch", 1000),
                                   idle_seconds=setting(config, "REBUILD.idle_seconds", 2))
        self.streams = streams_of(APPLIED)
        self.owner = uuid.uuid4().hex
        self.target = f"{store.base.name}_r{self.owner[:8]}"
        self.events = 0
        self._beaten = 0.0

    def claim(self):
        """True when this run may go ahead; a rebuild abandoned before loses its target."""
        now = self.clock()
        before = self.store.claim_rebuild(self.owner, self.target, now, now - self.stale)
        if before is None:
            return False
        abandoned = (before.get("rebuild") or {}).get("target")
        if abandoned and abandoned != before.get("active"):
            self.store.drop_projections(abandoned)  # a no-op for one that was switched to
        return True

    def run(self):
        """Steps 1-4 (after a successful claim); the final status."""
        started = time.perf_counter()
        target = MetricsStore.pinned(self.store.base, self.target)
        try:
            self._check_history()
            target.ensure_indexes()
            positions = {}
            self._catch_up(target, positions)
            self._snapshot(target)
            switched = self.store.switch_active(self.owner, self.target)
            if switched is None:
                raise ClaimLost(self.target)
            replaced, out_of_use = switched
            self.store.follow_active()
            self.sleep(self.grace)
            self._catch_up(target, positions)
            if out_of_use and out_of_use != self.target:
                self.store.drop_projections(out_of_use)
            seconds = time.perf_counter() - started
            self.store.finish_rebuild(self.owner, "done", self.clock(), events=self.events,
                                      replaced=replaced, seconds=round(seconds, 3))
            log.info("projections rebuilt from the streams", extra={
                "database": self.target, "events": self.events, "seconds": round(seconds, 3)})
        except Exception as exc:
            log.exception("rebuild into %s failed", self.target)
            self.store.finish_rebuild(self.owner, "failed", self.clock(), events=self.events,
                                      error=f"{type(exc).__name__}: {exc}"[:500])
            self.store.drop_projections(self.target)
            raise
        return self.store.rebuild_status()

    def _check_history(self):
        """Refuse (unless REBUILD.allow_truncated) when a stream no longer starts at its
        first event: the rebuilt KPIs would silently leave out what retention dropped."""
        if self.allow_truncated:
            return
        for stream in self.streams:
            first = self.reader.first_offset(stream)
            if first:
                raise HistoryTruncated(
                    f"{stream} starts at offset {first}: its retention dropped the events "
                    f"before, which the rebuilt projections would lack (keep the streams' "
                    f"max age and size above the history, or set REBUILD.allow_truncated)")

    def _catch_up(self, target, positions):
        """Read every stream from where it was left (`positions`: stream -> next offset)
        to its tail as it is now. One pass is enough each time: what is appended later
        reaches the new set through step 4's pass, or through the live handlers once
        they follow the switch. Events of a batch are applied concurrently (`workers`):
        apply is order-tolerant and one atomic write per event."""
        with ThreadPoolExecutor(self.workers) as pool:
            for stream in self.streams:
                tail = self.reader.tail(stream)
                nxt = positions.get(stream)
                if tail is None or (nxt is not None and tail < nxt):
                    continue
                for batch in self.reader.read(stream, "first" if nxt is None else nxt,
                                              until=tail):
                    events = [e for e in (parsed(body, APPLIED) for _, body in batch) if e]
                    for _ in pool.map(target.apply, events):
                        self.events += 1
                    positions[stream] = batch[-1][0] + 1
                    self._beat()

    def _beat(self):
        if time.monotonic() - self._beaten < self.heartbeat:
            return
        self._beaten = time.monotonic()
        if not self.store.beat(self.owner, self.clock(), events=self.events):
            raise ClaimLost(self.target)

    def _snapshot(self, target):
        """The new set's KPI state as a snapshot there, so instances switching to it
        restore it instead of reading every projection. Nothing else writes there yet:
        everything before the read is in it."""
        watermark = self.clock() - self.overlap
        state, cohorts, codec = kpi_state(target, self.rules, self.bucket_seconds)
        blob = snapshot.encode(snapshot.capture(state, cohorts), codec, watermark,
                               snapshot.fingerprint(self.rules, self.bucket_seconds))
        target.write_snapshot(blob, snapshot.checksum(blob), watermark, self.clock(),
                              self.chunk_bytes)


class Rebuilds(DependencyProvider):
    """Starts a rebuild in a thread of the service (the admin route); one at a time
    across every instance and `make replay` (the claim)."""

    def start(self):
        self.store = next(dep.store for dep in self.container.dependencies
                          if isinstance(dep, Store))

    def get_dependency(self, worker_ctx):
        return self

    def begin(self):
        """(started?, status): a rebuild already running is reported, not doubled."""
        run = Rebuild(self.store, self.container.config)
        if not run.claim():
            return False, self.store.rebuild_status()
        self.container.spawn_managed_thread(lambda: self._run(run),
                                            identifier="metrics.rebuild")
        return True, self.store.rebuild_status()

    @staticmethod
    def _run(run):
        try:
            run.run()
        except Exception:  # noqa: BLE001 - recorded as failed; the service lives on
            log.warning("rebuild did not complete", exc_info=True)

    def status(self):
        return self.store.rebuild_status()


def rebuild_once(config, sleep=time.sleep):
    """One rebuild in the foreground (`make replay`): (ran?, status)."""
    client = MongoClient(config["MONGO_URI"], tz_aware=True)
    try:
        store = MetricsStore(client[config.get("MONGO_DATABASE") or "metrics"], config)
        run = Rebuild(store, config, sleep=sleep)
        if not run.claim():
            return False, store.rebuild_status()
        return True, run.run()
    finally:
        client.close()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO)
    ran, status = rebuild_once(load_config(argv[0] if argv else "services/metrics/config.yml"))
    print(json.dumps(status, default=str))
    if not ran:
        print("a rebuild is running already", file=sys.stderr)
    return 0 if ran and status["rebuild"]["state"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
