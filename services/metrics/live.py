"""The live KPIs of one metrics instance, and their Prometheus exposition.

The truth is the projection documents in MongoDB (see store.py). Each instance holds the
sum of their contributions in memory (domain.Aggregates) and the cohort tallies
(cohorts.Cohorts), and keeps them current three ways:
1. at start, it loads the newest snapshot (snapshot.py) and re-reads only the projections
   changed since its watermark; without a usable snapshot it reads every projection. The
   KPIs are exposed (and `dealflow_metrics_projections_loaded` is 1) only after that;
2. after each of its own writes, it swaps in that entity's new contribution;
3. every `refresh_seconds`, it re-reads the projections other instances changed: those
   stamped `updated_at` (the database's clock, store.py) since its watermark and last
   written by another instance (each write names the instance that absorbed it, and the
   database leaves out this one's before it reads them), whose `rev` is newer than the
   one it knows. The watermark follows the newest stamp read (less
   `stamp_overlap_seconds`, for writes committed out of stamp order), and at most
   `refresh_overlap_seconds` behind its own clock (for skew between it and the
   database), so a refresh reads what changed since the last one, and an idle instance
   reads nothing. While refreshes find other instances' changes, a pass over just the
   collections they change follows every `refresh_busy_seconds`: another instance's
   writes reach the KPIs about that late during a burst, and the idle cost stays one
   query per collection per refresh_seconds. Every `snapshot_seconds`, when something
   changed, it writes a snapshot covering up to that refresh's watermark.
So every instance converges to the same totals, and a scrape is pure in-memory rendering
whose cost depends on the number of series, not on the history. An idle instance runs
one indexed query per collection per refresh and touches no entity.
"""
import datetime as dt
import gc
import logging
import time
import uuid

import eventlet
from eventlet import tpool
from eventlet.event import Event
from nameko.extensions import DependencyProvider
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.utils import floatToGoString

from kit.catalog import EVENT_TYPES
from kit.config import setting
from kit.fields import utcnow
from kit.mongo import Store
from kit.prom import PromRegistry
from metrics import quotes_kpis, snapshot, timetravel
from metrics.cohorts import Cohorts, summarise
from metrics.domain import (
    ACTIVITY_KINDS,
    LEAD_ORIGIN,
    MICROS,
    ORIGINS,
    OTHER,
    OUTCOMES,
    PRIORITIES,
    QUOTE_STATUSES,
    SLA_KINDS,
    Aggregates,
    Rules,
    contribution,
    crm_totals,
)
from metrics.store import PROJECTIONS, SOURCE_DB

log = logging.getLogger(__name__)

PREFIX = "dealflow_"


def _counters(rules):
    """(key name, help, label names, label sets always shown, even at zero)."""
    return (
        ("leads_created", "Leads created, by source", ["source"],
         [(s,) for s in rules.lead_sources + (OTHER,)]),
        ("funnel_entered", "Items that really entered each stage: leads by status, deals by "
         "their pipeline's own stage keys (a skipped stage is not entered)", ["stage"],
         [(s,) for s in rules.funnel]),
        ("funnel_reached", "Items that reached each funnel stage or a later one (leads; deals "
         "of the funnel pipeline, by origin: lead = opened or adopted by a lead's "
         "conversion, direct = not): the conversion ratios' inputs, at most 1 by "
         "construction", ["stage", "origin"],
         [(s, LEAD_ORIGIN) for s in rules.lead_stages]
         + [(s, o) for s in rules.deal_funnel for o in ORIGINS]),
        ("deals_lost", "Deals lost, by reason", ["reason"],
         [(r,) for r in rules.lost_reasons + (OTHER,)]),
        ("quotes", "Quotes that ever reached each status", ["status"],
         [(s,) for s in QUOTE_STATUSES]),
        ("tickets_opened", "Tickets opened, by priority", ["priority"],
         [(p,) for p in PRIORITIES]),
        ("ticket_sla_breaches", "Ticket SLA breaches, by kind and priority",
         ["kind", "priority"], [(k, p) for k in SLA_KINDS for p in PRIORITIES]),
        ("csat_ratings", "Customer satisfaction ratings, by score (1-5)", ["score"],
         [(str(s),) for s in range(1, 6)]),
        ("ticket_sla_warnings", "Ticket SLA warnings (a share of a target used up), by kind "
         "and priority", ["kind", "priority"], [(k, p) for k in SLA_KINDS for p in PRIORITIES]),
        ("ticket_sla_outcomes", "Ticket SLA clocks stopped within (met) or past (missed) "
         "their target, by kind: the SLA attainment's inputs", ["kind", "outcome"],
         [(k, o) for k in SLA_KINDS for o in ("met", "missed")]),
        ("delivery_steps_completed", "Delivery checklist steps completed, on time or late",
         ["timing"], [("on_time",), ("late",)]),
        ("deal_activities", "Activities logged on deals, by kind and the stage the deal was "
         "in when logged: over funnel_entered, the activities per deal per stage",
         ["kind", "stage"], [(k, s) for k in ACTIVITY_KINDS for s in rules.deal_stages]),
        ("deal_tasks_due", "Deal tasks that fell due while open", [], [()]),
        ("leads_recycled", "Leads recycled into nurture (each lead once)", [], [()]),
        ("leads_recycled_converted", "Recycled leads converted after their first recycling "
         "(each lead once)", [], [()]),
        ("events_applied", "Distinct events applied to the projections, by type", ["type"],
         [(t,) for t in sorted(EVENT_TYPES)]),
        ("events_duplicate", "Deliveries of events already applied, by type", ["type"],
         [(t,) for t in sorted(EVENT_TYPES)]),
    )


def _gauges(rules):
    return (
        ("funnel_current", "Items in each funnel stage now", ["stage"],
         [(s,) for s in rules.funnel]),
        ("deals_closed", "Deals whose outcome now is won or lost, each deal once (a reopened "
         "deal leaves until it closes again): the win rate's inputs", ["outcome"],
         [(o,) for o in OUTCOMES]),
        ("pipeline_amount", "Amount of open deals by current stage", ["stage", "currency"], []),
        ("forecast_weighted_amount", "Open deals' amount times probability, by expected "
         "close month", ["currency", "month"], []),
        *quotes_kpis.gauges(),
        ("tickets_open", "Tickets open now (new, open or pending), by priority", ["priority"],
         [(p,) for p in PRIORITIES]),
        ("deliveries_open", "Delivery projects opened by a win and not accepted yet", [],
         [()]),
    )


def _histograms():
    return (
        ("lead_first_response_seconds", "Time from lead creation to first response", [],
         [()]),
        ("deal_cycle_seconds", "Time from deal creation to won or lost", ["outcome"],
         [(o,) for o in OUTCOMES]),
        ("quote_approval_seconds", "Time from quote submission to approval", [], [()]),
        ("ticket_resolution_seconds", "Time from ticket opening to resolution", ["priority"],
         [(p,) for p in PRIORITIES]),
        ("ticket_first_response_seconds", "Time from ticket opening to the first public "
         "agent reply", ["priority"], [(p,) for p in PRIORITIES]),
        ("delivery_won_to_accepted_seconds", "Time from a deal's win to the customer's "
         "acceptance of its delivery", [], [()]),
    )


class KpiCollector:
    """Renders the aggregates; registered in the container's Prometheus registry."""

    def __init__(self, live):
        self.live = live
        rules = live.rules
        self.counters = _counters(rules)
        self.gauges = _gauges(rules)
        self.histograms = _histograms()

    def describe(self):
        return []

    def collect(self):
        live = self.live
        ready = GaugeMetricFamily(
            PREFIX + "metrics_projections_loaded",
            "1 once this instance has restored its KPIs (a snapshot and the projections "
            "changed since, or every projection); KPIs are exposed from then on")
        ready.add_metric([], 1 if live.ready else 0)
        yield ready
        if not live.ready:
            return
        entities = GaugeMetricFamily(PREFIX + "metrics_projections",
                                     "Entity projections known to this instance", labels=["kind"])
        for kind in PROJECTIONS:
            entities.add_metric([kind], live.state.entity_count(kind))
        yield entities
        by_name = {}
        for (name, labels), value in list(live.state.values.items()):
            by_name.setdefault(name, {})[labels] = value
        for name, doc, labels, defaults in self.counters:
            family = CounterMetricFamily(PREFIX + name, doc, labels=labels)
            for labelset, value in _with_defaults(by_name.get(name, {}), defaults):
                family.add_metric(list(labelset), float(value))
            yield family
        for name, doc, labels, defaults in self.gauges:
            family = GaugeMetricFamily(PREFIX + name, doc, labels=labels)
            # A stage or month an instance saw a deal pass through leaves a zero behind;
            # dropping it keeps every instance's exposition identical.
            present = {k: v for k, v in by_name.get(name, {}).items() if v}
            for labelset, value in _with_defaults(present, defaults):
                family.add_metric(list(labelset), float(value))
            yield family
        for name, doc, labels, defaults in self.histograms:
            yield self._histogram(name, doc, labels, defaults, by_name)

    def _histogram(self, name, doc, labels, defaults, by_name):
        bounds = self.live.rules.buckets[name]
        counts = {labelset: [0] * (len(bounds) + 1) for labelset in defaults}
        for labelset, value in by_name.get(name, {}).items():
            counts.setdefault(labelset[:-1], [0] * (len(bounds) + 1))[labelset[-1]] += value
        sums = by_name.get(name + ":sum", {})
        family = HistogramMetricFamily(PREFIX + name, doc, labels=labels)
        for labelset in sorted(counts):
            cumulative, buckets = 0, []
            for bound, count in zip(bounds + (float("inf"),), counts[labelset], strict=True):
                cumulative += count
                buckets.append((floatToGoString(bound), cumulative))
            family.add_metric(list(labelset), buckets, sums.get(labelset, 0) / MICROS)
        return family


def _with_defaults(values, defaults):
    merged = dict.fromkeys(defaults, 0)
    merged.update(values)
    return sorted(merged.items())


class LiveKpis(DependencyProvider):
    prom = PromRegistry()

    def setup(self):
        config = self.container.config
        self.rules = Rules.from_config(setting(config, "KPIS"))
        self.refresh_seconds = float(setting(config, "KPIS.refresh_seconds", 5))
        self.busy_seconds = min(self.refresh_seconds,
                                float(setting(config, "KPIS.refresh_busy_seconds", 0.1)))
        self.overlap = dt.timedelta(seconds=float(setting(config, "KPIS.refresh_overlap_seconds",
                                                          15)))
        self.stamp_overlap = dt.timedelta(
            seconds=float(setting(config, "KPIS.stamp_overlap_seconds", 0.25)))
        self.snapshot_seconds = float(setting(config, "KPIS.snapshot_seconds", 60))
        self.chunk_bytes = int(setting(config, "KPIS.snapshot_chunk_bytes", 4 << 20))
        self.bucket_seconds = float(setting(config, "KPIS.cohort_bucket_seconds", 86400))
        self.fingerprint = snapshot.fingerprint(self.rules, self.bucket_seconds)
        self.codec = snapshot.Codec()
        self.state = Aggregates(decode=self.codec.decode)
        self.cohorts = Cohorts(self.rules, self.bucket_seconds)
        self.ready = False
        self.restored_from = None  # "snapshot" or "projections", once ready
        self.source_db = None  # the projection database the state was read from
        self._snapshotted = 0
        self.passes = 0  # completed refresh passes: how tests see the loop turn
        # names this instance's writes (store.WRITER): its refreshes need not read them
        self.writer = uuid.uuid4().hex
        # per kind, the newest `updated_at` taken in, its own writes' included: a refresh's
        # watermark follows these too, or with its own writes left out of what it reads it
        # would stay behind while only this instance writes, and each query would go through
        # every write since then again
        self._seen = {}
        self.restored = False  # the KPIs were restored once (the projections_loaded gauge)
        self._restored = Event()
        # restored while the other extensions set up (the handlers declare their queues,
        # the store creates its indexes), not after them
        self._running = True
        self.container.spawn_managed_thread(self._keep_current, identifier="kpis.refresh")

    def start(self):
        self.store = self._store_provider().wait_for_store()
        self.prom.registry.register(KpiCollector(self))

    def wait_restored(self):
        """Return once the KPIs were restored (work that can wait until the start is
        done, and would otherwise slow it down)."""
        self._restored.wait()

    def _store_provider(self):
        return next(dep for dep in self.container.dependencies if isinstance(dep, Store))

    def stop(self):
        self._running = False

    def kill(self):
        self._running = False

    def get_dependency(self, worker_ctx):
        return self

    def absorb(self, kind, doc):
        """Take in a projection as read or written; a stale revision changes nothing."""
        if doc.get(SOURCE_DB, self.source_db) != self.source_db:
            return  # written to a database this instance is switching from or to
        stamp = doc.get("updated_at")
        if stamp is not None and (kind not in self._seen or stamp > self._seen[kind]):
            self._seen[kind] = stamp
        rev = doc.get("rev", 0)
        if rev > self.state.known_rev(kind, doc["_id"]):
            self.state.replace(kind, doc["_id"], rev, contribution(kind, doc, self.rules))
            self.cohorts.absorb(kind, doc)

    def funnel(self, start, end, pipeline, as_of=None):
        """The cohort funnel of leads created in [start, end): from the tallies in memory;
        before the KPIs are restored, or as of a past moment, from the projections of the
        window (as they were then: metrics.timetravel), without the all-time totals (they
        would be partial)."""
        pipeline = pipeline or self.rules.funnel_pipeline
        if self.ready and as_of is None:
            return {**self.cohorts.funnel(start, end, pipeline),
                    "totals": crm_totals(dict(self.state.values), self.rules, pipeline)}
        leads, deals = self.store.cohort(start, end)
        if as_of is not None:
            leads = [timetravel.as_of(doc, as_of) for doc in leads]
            deals = [timetravel.as_of(doc, as_of) for doc in deals]
        window = Cohorts.of(leads, deals, self.rules, self.bucket_seconds)
        return {**summarise(self.rules, *window.tallies(pipeline)), "totals": None}

    def _keep_current(self):
        self.store = self._store_provider().wait_for_store()
        since = None
        busy = ()  # the kinds whose last read found other instances' changes
        snapshot_due = time.monotonic() + self.snapshot_seconds
        full_due = 0.0
        while self._running:
            delay = self.refresh_seconds
            try:
                # a full pass every refresh_seconds; between them, while others write, a
                # pass over just the kinds they write, every busy_seconds
                full = not busy or time.monotonic() >= full_due
                if full:
                    full_due = time.monotonic() + self.refresh_seconds
                    self.store.follow_active()
                if self.ready and self.store.db.name != self.source_db:
                    since, busy = self._restore(), ()  # a rebuild switched the projections
                elif self.ready:
                    since, busy = self._refresh(since, PROJECTIONS if full else busy,
                                                self.writer)
                    if time.monotonic() >= snapshot_due:
                        snapshot_due = time.monotonic() + self.snapshot_seconds
                        self._snapshot(min(since.values()))
                    delay = (self.busy_seconds if busy
                             else max(full_due - time.monotonic(), 0.0))
                else:
                    since = self._restore()
                    self.ready = self.restored = True
                    if not self._restored.ready():  # (again after a failed switch)
                        self._restored.send()
                self.passes += 1
            except Exception as exc:  # noqa: BLE001 - a managed thread must not die
                log.warning("reading projections failed, retrying: %s", exc)
                delay = min(self.refresh_seconds, 1.0)
                busy = ()
            eventlet.sleep(delay)

    def _restore(self):
        self.source_db = self.store.db.name
        self._seen = {}
        try:
            since = self._from_snapshot()
        except snapshot.SnapshotError as exc:
            log.warning("KPI snapshot unusable, reading every projection: %s", exc)
            since = None
        if since is None:
            self.restored_from = "projections"
            if self.ready:  # switching without a snapshot: start from nothing, unexposed
                self.ready = False
                self.codec = snapshot.Codec()
                self.state = Aggregates(decode=self.codec.decode)
                self.cohorts = Cohorts(self.rules, self.bucket_seconds)
            since = self._load_all()
            self.ready = True
        else:
            self.restored_from = "snapshot"
        # the restored state lives as long as the process: later collections skip it, so an
        # idle instance does not walk a million objects now and then
        gc.freeze()
        return since

    def _from_snapshot(self):
        """Install the newest snapshot and catch up from its watermark; None without one.
        Handlers' absorbs while it is read land in the state it replaces, but their writes
        are after the watermark, so the catch-up reads them again."""
        started = time.perf_counter()
        got = self.store.read_snapshot()
        if got is None:
            return None
        blob, manifest = got
        read = time.perf_counter()
        if snapshot.checksum(blob) != manifest.get("sha256"):
            raise snapshot.SnapshotError("the snapshot's checksum does not match")
        # the decode makes a few hundred thousand small containers that all live on; the
        # cyclic collector would walk them over and over while they are made (half the time)
        gc.disable()
        try:
            state, cohorts, watermark, codec = snapshot.decode(
                blob, self.fingerprint, self.rules, self.bucket_seconds)
        finally:
            gc.enable()
        self.codec, self.state, self.cohorts = codec, state, cohorts
        self._snapshotted = 0
        decoded = time.perf_counter()
        since, _ = self._refresh(watermark)
        log.info("KPIs restored from a snapshot", extra={
            "snapshot_bytes": len(blob), "read_s": round(read - started, 3),
            "decode_s": round(decoded - read, 3),
            "catch_up_s": round(time.perf_counter() - decoded, 3),
            "caught_up": state.changes, "watermark": watermark.isoformat()})
        return since

    def _snapshot(self, since):
        """Write a snapshot covering what the last refresh covered; nothing when idle.

        Only into the set this state was read from: a rebuild in this process switches
        the store to its new set at once (before the next pass restores from there), and
        the old state written there, with a later watermark than the rebuild's own
        snapshot, would be what every instance restored."""
        changes = self.state.changes
        space = self.store.db
        if changes == self._snapshotted or space.name != self.source_db:
            return
        captured = snapshot.capture(self.state, self.cohorts)
        # encoding is CPU work on immutable copies: a real thread keeps scrapes answered
        blob = tpool.execute(snapshot.encode, captured, self.codec, since, self.fingerprint)
        self.store.write_snapshot(blob, snapshot.checksum(blob), since, utcnow(),
                                  self.chunk_bytes, space=space)
        self._snapshotted = changes

    def _load_all(self):
        started = utcnow()
        for kind in PROJECTIONS:
            for n, doc in enumerate(self.store.all_projections(kind)):
                self.absorb(kind, doc)
                if n % 500 == 499:
                    eventlet.sleep(0)  # let handlers and scrapes run during a long load
        return started - self.overlap

    def _refresh(self, since, kinds=PROJECTIONS, skip_writer=None):
        """Read the projections of `kinds` changed since `since` (a watermark, or one per
        kind) that are newer than known, but for those `skip_writer` wrote last; returns
        the next watermark of each kind (see the module's docstring) and the kinds where
        it found such projections. One watermark per kind: each collection's query sees its
        own moment, so a stamp read in one says nothing of writes to another that commit
        meanwhile. A restore's catch-up skips nothing: the writes this instance absorbed
        into the state that the restore replaced are among those it must read."""
        floor = utcnow() - self.overlap
        marks = dict(since) if isinstance(since, dict) else dict.fromkeys(PROJECTIONS, since)
        found = []
        for kind in kinds:
            start = since[kind] if isinstance(since, dict) else since
            # taken before the query: a write is covered by it only once it committed first
            newest, stale = self._seen.get(kind), False
            for doc in self.store.changed_projections(kind, start, skip_writer):
                stamp = doc.get("updated_at")
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
                if doc.get("rev", 0) > self.state.known_rev(kind, doc["_id"]):
                    stale = True
                    self.absorb(kind, doc)
            if stale:
                found.append(kind)
            marks[kind] = max(m for m in (start, floor, newest and newest - self.stamp_overlap)
                              if m)
        return marks, tuple(found)
