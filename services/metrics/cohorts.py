"""The cohort funnel kept current, so a query costs the periods of its window, not its leads.

What `domain.cohort_funnel` computes from every lead of a window and their deals is a sum
of per-lead *rows*: how far the lead got (its furthest funnel stage, its deal's stages
counted when it has a deal of the pipeline asked for) and its stage-to-stage durations.
The rows are tallied by the lead's creation period (`bucket_seconds`, a day by default):
- slot BASE: every lead's row without deals (this also counts the leads);
- slots "-<pipeline>" and "+<pipeline>": for a lead with a deal of that pipeline, its row
  without deals (to take out) and with its best deal (to put in).
So the funnel of pipeline P over whole periods is BASE - "-P" + "+P", exactly; the
leads of the partial periods at the window's edges are taken one by one (their inputs
are in memory, indexed by period), so a query reads no projection.
Reached counts are integer sums; the durations are kept as sorted lists of microseconds
per period and transition, so the medians are exact order statistics of the same values
the old computation used (merging sorted runs is C work; only the median is selected).

Each lead's rows are a pure function of its own summary (`lead_input`) and its deals'
(`deal_input`): when either changes, the lead's old rows are taken out and the new ones
put in, the same contribution swap as the KPIs (rev-guarded by the caller), so duplicates
and replays change nothing and instances converge.
"""
import bisect
import datetime as dt
from itertools import chain

from metrics.domain import MICROS, _aware, _micros, _rate, deal_summary, lead_summary

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
BASE = ""
# buckets whose tallies are summed and their durations merged once, and kept so until one
# of them changes: a year's funnel then adds a dozen blocks, not 365 days
BLOCK = 32
MERGE_BELOW = 20_000  # durations of a window up to which a median sorts them all


def epoch_micros(at):
    return None if at is None else _micros(_aware(at) - EPOCH)


def lead_input(doc, rules):
    """(created, reached, lead stage times...) in epoch microseconds; None without a
    creation time (such a lead is in no cohort). The creation time is the earliest one
    the facts carry, as the store's top-level `created_at` the window query filters on."""
    created = min((_aware(f["created_at"]) for f in doc.get("facts") or ()
                   if f.get("created_at")), default=None)
    if created is None:
        return None
    s = lead_summary(doc, rules)
    return (epoch_micros(created), s["reached"],
            *(epoch_micros(s["times"][stage]) for stage in rules.lead_stages))


def deal_input(doc, rules):
    """(lead id, pipeline, reached, funnel stage times...) of a deal opened from a lead;
    None for a deal without one (it is in no cohort)."""
    s = deal_summary(doc, rules)
    if not s["lead_id"]:
        return None
    return (s["lead_id"], s["pipeline_id"], s["reached"],
            *(epoch_micros(s["times"].get(stage)) for stage in rules.deal_funnel))


def row(lead, deal, rules):
    """(furthest stage index, ((transition index, micros), ...)) of one lead, with its
    best deal of a pipeline or without (deal None): domain.cohort_funnel's per-lead step."""
    n_lead = len(rules.lead_stages)
    furthest = lead[1]
    times = lead[2:] + (None,) * len(rules.deal_funnel)
    if deal is not None and deal[2] >= 0:
        furthest = max(furthest, n_lead + deal[2])
        times = lead[2:] + deal[3:]
    gaps = tuple((i, times[i + 1] - times[i]) for i in range(len(times) - 1)
                 if i + 1 <= furthest and times[i] is not None and times[i + 1] is not None)
    return furthest, gaps


def lead_rows(lead, deals, rules, width):
    """The lead's (bucket, slot, row) entries; `deals`: (deal id, deal input) pairs. Per
    pipeline the deal that got furthest counts, the lowest id among equals."""
    if lead is None:
        return ()
    bucket = lead[0] // width
    base = row(lead, None, rules)
    out = [(bucket, BASE, base)]
    best = {}
    for _deal_id, deal in sorted(deals):
        known = best.get(deal[1])
        if known is None or deal[2] > known[2]:
            best[deal[1]] = deal
    for pipeline, deal in sorted(best.items(), key=lambda item: str(item[0])):
        combined = row(lead, deal, rules)
        if combined != base:
            out.append((bucket, "-" + str(pipeline), base))
            out.append((bucket, "+" + str(pipeline), combined))
    return out


class Tally:
    """Rows summed: how many, reached counts per stage, sorted durations per transition."""

    __slots__ = ("rows", "reached", "gaps")

    def __init__(self, stages, rows=0, reached=None, gaps=None):
        self.rows = rows
        self.reached = reached or [0] * stages
        self.gaps = gaps or [[] for _ in range(stages - 1)]

    def add(self, entry_row, sign):
        furthest, gaps = entry_row
        self.rows += sign
        reached = self.reached
        for i in range(furthest + 1):
            reached[i] += sign
        for i, micros in gaps:
            values = self.gaps[i]
            if sign > 0:
                bisect.insort(values, micros)
            else:
                del values[bisect.bisect_left(values, micros)]

    def dump(self):
        """A copy: a snapshot is encoded in another thread while the tallies change."""
        return [self.rows, list(self.reached), [list(values) for values in self.gaps]]


class Cohorts:
    """Every known lead's and lead deal's cohort input, and the tallies of their rows."""

    def __init__(self, rules, bucket_seconds):
        self.rules = rules
        self.width = int(bucket_seconds * MICROS)
        self.stages = len(rules.funnel)
        self.leads = {}        # lead id -> lead_input
        self.deals = {}        # deal id -> deal_input
        self.lead_deals = {}   # lead id -> {deal ids}
        self.buckets = {}      # bucket -> {slot: Tally}
        self.members = {}      # bucket -> {lead ids}, for the partial buckets of a window
        self.changes = {}      # block -> changes of its tallies so far
        self.blocks = {}       # block -> (changes when merged, {slot: merged Tally})

    def _rows(self, lead_id):
        deal_ids = self.lead_deals.get(lead_id, ())
        return lead_rows(self.leads.get(lead_id), [(d, self.deals[d]) for d in deal_ids],
                         self.rules, self.width)

    def _apply(self, entries, sign):
        for bucket, slot, entry_row in entries:
            self.changes[bucket // BLOCK] = self.changes.get(bucket // BLOCK, 0) + 1
            slots = self.buckets.setdefault(bucket, {})
            tally = slots.get(slot)
            if tally is None:
                tally = slots[slot] = Tally(self.stages)
            tally.add(entry_row, sign)

    def _swap(self, lead_ids, change):
        old = [self._rows(lead_id) for lead_id in lead_ids]
        change()
        for lead_id, before in zip(lead_ids, old, strict=True):
            after = self._rows(lead_id)
            if after != before:
                self._apply(before, -1)
                self._apply(after, 1)

    def set_lead(self, lead_id, lead):
        def change():
            old = self.leads.pop(lead_id, None)
            if old is not None:
                self.members[old[0] // self.width].discard(lead_id)
            if lead is not None:
                self.leads[lead_id] = lead
                self.members.setdefault(lead[0] // self.width, set()).add(lead_id)
        self._swap([lead_id], change)

    def set_deal(self, deal_id, deal):
        old = self.deals.get(deal_id)
        lead_ids = sorted({d[0] for d in (old, deal) if d is not None})

        def change():
            if old is not None:
                self.lead_deals[old[0]].discard(deal_id)
                if not self.lead_deals[old[0]]:
                    del self.lead_deals[old[0]]
            if deal is None:
                self.deals.pop(deal_id, None)
            else:
                self.deals[deal_id] = deal
                self.lead_deals.setdefault(deal[0], set()).add(deal_id)
        self._swap(lead_ids, change)

    def absorb(self, kind, doc):
        if kind == "leads":
            self.set_lead(doc["_id"], lead_input(doc, self.rules))
        elif kind == "deals":
            self.set_deal(doc["_id"], deal_input(doc, self.rules))

    # --- queries -----------------------------------------------------------------------------

    def split(self, start, end):
        """The window [start, end) in epoch microseconds as (first whole bucket, end
        bucket, edge ranges): the edges are the parts of partial buckets."""
        lo, hi = epoch_micros(start), epoch_micros(end)
        first, last = -(-lo // self.width), hi // self.width
        if first >= last:
            return first, first, [(lo, hi)]
        edges = []
        if lo < first * self.width:
            edges.append((lo, first * self.width))
        if last * self.width < hi:
            edges.append((last * self.width, hi))
        return first, last, edges

    def tallies(self, pipeline, first=None, last=None):
        """(tallies to add, tallies to take out) of the buckets in [first, last); whole
        blocks of buckets as one merged tally each."""
        if first is None:
            chosen = self.buckets.values()
        else:
            chosen = []
            known = self.buckets.keys()
            bucket, last = max(first, min(known, default=0)), min(last, max(known, default=0) + 1)
            while bucket < last:
                if bucket % BLOCK == 0 and bucket + BLOCK <= last:
                    chosen.append(self._block(bucket // BLOCK))
                    bucket += BLOCK
                    continue
                if bucket in self.buckets:
                    chosen.append(self.buckets[bucket])
                bucket += 1
        plus, minus = [], []
        for slots in chosen:
            for slot, sign in ((BASE, plus), ("+" + str(pipeline), plus),
                               ("-" + str(pipeline), minus)):
                tally = slots.get(slot)
                if tally is not None:
                    sign.append(tally)
        return plus, minus

    def _block(self, block):
        """{slot: Tally} of the buckets of a block, merged when it last changed."""
        changes = self.changes.get(block, 0)
        cached = self.blocks.get(block)
        if cached is None or cached[0] != changes:
            by_slot = {}
            for bucket in range(block * BLOCK, (block + 1) * BLOCK):
                for slot, tally in self.buckets.get(bucket, {}).items():
                    by_slot.setdefault(slot, []).append(tally)
            merged = {slot: Tally(
                self.stages, sum(t.rows for t in tallies),
                [sum(counts) for counts in zip(*(t.reached for t in tallies), strict=True)],
                [sorted(chain.from_iterable(t.gaps[i] for t in tallies))
                 for i in range(self.stages - 1)])
                for slot, tallies in by_slot.items()}
            cached = self.blocks[block] = (changes, merged)
        return cached[1]

    def _edge(self, lo, hi, pipeline):
        """Tallies of the leads created in [lo, hi) (at most two partial buckets), lead
        by lead."""
        plus, minus = Tally(self.stages), Tally(self.stages)
        wanted = {BASE: (plus, 1), "+" + str(pipeline): (plus, 1),
                  "-" + str(pipeline): (minus, 1)}
        members = chain.from_iterable(self.members.get(bucket, ())
                                      for bucket in range(lo // self.width,
                                                          (hi - 1) // self.width + 1))
        for lead_id in members:
            if lo <= self.leads[lead_id][0] < hi:
                for _, slot, entry_row in self._rows(lead_id):
                    if slot in wanted:
                        tally, sign = wanted[slot]
                        tally.add(entry_row, sign)
        return plus, minus

    def funnel(self, start, end, pipeline):
        """The cohort funnel of the leads created in [start, end) for `pipeline`."""
        first, last, edges = self.split(start, end)
        plus, minus = self.tallies(pipeline, first, last)
        for lo, hi in edges:
            edge_plus, edge_minus = self._edge(lo, hi, pipeline)
            plus.append(edge_plus)
            minus.append(edge_minus)
        return summarise(self.rules, plus, minus)

    @classmethod
    def of(cls, lead_docs, deal_docs, rules, bucket_seconds):
        cohorts = cls(rules, bucket_seconds)
        for doc in deal_docs:
            cohorts.absorb("deals", doc)
        for doc in lead_docs:
            cohorts.absorb("leads", doc)
        return cohorts

    # --- snapshot ------------------------------------------------------------------------------

    def dump(self):
        """A JSON-able copy (taken without yielding, so it is consistent)."""
        return {
            "leads": [[lead_id, *lead] for lead_id, lead in self.leads.items()],
            "deals": [[deal_id, *deal] for deal_id, deal in self.deals.items()],
            "buckets": [[bucket, slot, *tally.dump()]
                        for bucket, slots in self.buckets.items()
                        for slot, tally in slots.items() if tally.rows],
        }

    @classmethod
    def load(cls, data, rules, bucket_seconds):
        cohorts = cls(rules, bucket_seconds)
        cohorts.leads = {item[0]: tuple(item[1:]) for item in data["leads"]}
        cohorts.deals = {item[0]: tuple(item[1:]) for item in data["deals"]}
        for deal_id, deal in cohorts.deals.items():
            cohorts.lead_deals.setdefault(deal[0], set()).add(deal_id)
        for lead_id, lead in cohorts.leads.items():
            cohorts.members.setdefault(lead[0] // cohorts.width, set()).add(lead_id)
        for bucket, slot, rows, reached, gaps in data["buckets"]:
            if len(reached) != cohorts.stages or len(gaps) != cohorts.stages - 1:
                raise ValueError("cohort tallies do not fit the funnel stages")
            cohorts.buckets.setdefault(bucket, {})[slot] = Tally(cohorts.stages, rows,
                                                                 reached, gaps)
        return cohorts


def _kth(runs, removed, k):
    """The k-th smallest (0-based) integer of the multiset union of the sorted `runs`
    minus that of `removed` (a sub-multiset): a binary search on the value, counting with
    bisect in each run, never a merge."""
    lo, hi = min(run[0] for run in runs), max(run[-1] for run in runs)
    while lo < hi:
        mid = (lo + hi) // 2
        below = sum(bisect.bisect_right(run, mid) for run in runs) \
            - sum(bisect.bisect_right(run, mid) for run in removed)
        if below > k:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _median_seconds(runs, removed):
    runs, removed = [r for r in runs if r], [r for r in removed if r]
    n = sum(map(len, runs)) - sum(map(len, removed))
    if n <= 0:
        return None
    if n <= MERGE_BELOW:  # a small window: one C sort of its values costs less
        runs, removed = [sorted(chain.from_iterable(runs))], [sorted(chain.from_iterable(removed))]
        removed = [r for r in removed if r]
    i = n // 2
    upper = _kth(runs, removed, i) / MICROS
    if n % 2:
        return round(upper, 3)
    # statistics.median's arithmetic on the seconds, as domain.cohort_funnel does it
    return round((_kth(runs, removed, i - 1) / MICROS + upper) / 2, 3)


def summarise(rules, plus, minus):
    """domain.cohort_funnel's answer from tallies: sum(plus) - sum(minus)."""
    stages = len(rules.funnel)
    reached = [0] * stages
    for tallies, sign in ((plus, 1), (minus, -1)):
        for tally in tallies:
            for i, count in enumerate(tally.reached):
                reached[i] += sign * count
    # only BASE tallies count leads; "+" and "-" rows of one lead cancel out
    leads = sum(t.rows for t in plus) - sum(t.rows for t in minus)
    transitions = []
    for i, (a, b) in enumerate(zip(rules.funnel, rules.funnel[1:], strict=False)):
        runs, removed = [t.gaps[i] for t in plus], [t.gaps[i] for t in minus]
        transitions.append({
            "from": a, "to": b,
            "conversion_rate": _rate(reached[i + 1], reached[i]),
            "median_seconds": _median_seconds(runs, removed),
            "samples": sum(map(len, runs)) - sum(map(len, removed)),
        })
    return {
        "leads": leads,
        "stages": [{"stage": stage, "reached": count}
                   for stage, count in zip(rules.funnel, reached, strict=True)],
        "transitions": transitions,
        "overall_conversion_rate": _rate(reached[-1], reached[0]),
    }
