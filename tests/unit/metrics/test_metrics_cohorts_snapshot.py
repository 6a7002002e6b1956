"""The cohort tallies answer exactly what domain.cohort_funnel computes from the projections
(any window, any pipeline, whatever order the facts arrived in), and a snapshot restores
the KPI state and the tallies exactly, also for the changes that follow it."""
import datetime as dt
import random

import pytest

from metrics import cohorts, domain, snapshot
from tests.unit.metrics.test_metrics_domain import RULES

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
CUSTOM = "pipe-custom"
CUSTOM_STAGES = ["demo", "proposal", "trial"]


def _mixed_facts(rng, n_leads=120, n_deals=110):
    """(kind, id, fact) of a mixed history: leads at every step (disqualified, answered
    without a move, without a creation fact), deals with and without leads (some of
    unknown leads, some leads with two deals that got equally far), deals lost and
    reopened, won, in the funnel pipeline and in custom ones."""
    out = []
    lead_ids = [f"L{i}" for i in range(n_leads)]
    for lid in lead_ids:
        created = T0 + dt.timedelta(minutes=rng.randrange(0, 20 * 24 * 60))
        seq = 0

        def add(etype, status, at, lid=lid, **data):
            nonlocal seq
            seq += 1
            out.append(("leads", lid, {"id": f"{lid}-{seq}", "type": etype, "seq": seq,
                                       "time": at, "source": "api", "status": status,
                                       **data}))
        if rng.random() < 0.95:
            add("lead.created", "new", created, created_at=created)
        else:
            add("lead.assigned", "new", created)
        at, status = created, "new"
        for step in ("contacted", "qualified", "converted"):
            if rng.random() < 0.3:
                break
            at += dt.timedelta(minutes=rng.randrange(1, 3000))
            if step == "contacted":
                status = "contacted" if rng.random() < 0.8 else "new"  # answered, no move
                add("lead.contacted", status, at, created_at=created, contacted_at=at,
                    first_response_seconds=(at - created).total_seconds())
            elif step == "qualified":
                status = "qualified"
                add("lead.qualified", status, at)
            else:
                status = "converted"
                add("lead.converted", status, at, created_at=created, converted_at=at)
        if status != "converted" and rng.random() < 0.2:
            add("lead.disqualified", "disqualified", at + dt.timedelta(hours=1),
                reason="no budget")
    for i in range(n_deals):
        did = f"D{i:03d}"
        pipeline = rng.choice(["default", "default", "default", CUSTOM])
        stages = list(RULES.deal_stages) if pipeline == "default" else CUSTOM_STAGES
        roll = rng.random()
        lead_id = (None if roll < 0.2 else "ghost-lead" if roll < 0.25
                   else rng.choice(lead_ids[: n_leads // 2]))  # half the leads: many deals
        opened = T0 + dt.timedelta(days=rng.randrange(0, 25), minutes=rng.randrange(0, 600))
        common = {"pipeline_id": pipeline, "created_at": opened}
        seq = 1
        first = rng.randrange(0, 2)
        created = {"id": f"{did}-1", "type": "deal.created", "seq": 1, "time": opened,
                   "stage": stages[first], "amount": "100", "currency": "EUR",
                   "probability": 10, **common}
        if lead_id:
            created["lead_id"] = lead_id
            created["origin"] = "lead"
        out.append(("deals", did, created))
        stage, at = stages[first], opened
        for nxt in stages[first + 1:]:
            if rng.random() < 0.35:
                break
            if rng.random() < 0.2:
                continue  # a skipped stage
            seq += 1
            at += dt.timedelta(hours=rng.randrange(1, 200))
            out.append(("deals", did, {"id": f"{did}-{seq}", "type": "deal.stage_changed",
                                       "seq": seq, "time": at, "from_stage": stage,
                                       "to_stage": nxt, "changed_at": at, **common}))
            stage = nxt
        close = rng.random()
        if close < 0.5:
            seq += 1
            at += dt.timedelta(days=1)
            won = close < 0.3
            fact = {"id": f"{did}-{seq}", "type": "deal.won" if won else "deal.lost",
                    "seq": seq, "time": at, "from_stage": stage, **common,
                    ("won_at" if won else "lost_at"): at}
            if not won:
                fact["reason"] = "price"
            out.append(("deals", did, fact))
            if rng.random() < 0.3:  # reopened
                seq += 1
                at += dt.timedelta(days=1)
                out.append(("deals", did, {
                    "id": f"{did}-{seq}", "type": "deal.stage_changed", "seq": seq,
                    "time": at, "from_stage": "won" if won else "lost",
                    "to_stage": stages[-1], "changed_at": at, **common}))
    rng.shuffle(out)
    return out


def _apply(docs, kind, entity_id, fact):
    doc = docs.setdefault((kind, entity_id), {"_id": entity_id, "facts": [], "rev": 0})
    doc = {**doc, "facts": doc["facts"] + [fact], "rev": doc["rev"] + 1}
    if fact.get("created_at") and kind == "leads":
        doc["created_at"] = min(doc.get("created_at", fact["created_at"]), fact["created_at"])
    docs[(kind, entity_id)] = doc
    return doc


def _history(seed, bucket_seconds):
    """Projections after every fact, and Cohorts that absorbed each intermediate one."""
    docs = {}
    live = cohorts.Cohorts(RULES, bucket_seconds)
    for kind, entity_id, fact in _mixed_facts(random.Random(seed)):
        live.absorb(kind, _apply(docs, kind, entity_id, fact))
    return docs, live


def _reference(docs, start, end, pipeline):
    leads = [d for (k, _), d in docs.items() if k == "leads"
             and d.get("created_at") and start <= d["created_at"] < end]
    deals = [d for (k, _), d in docs.items() if k == "deals"]
    return domain.cohort_funnel(leads, deals, RULES, pipeline)


def _edges(docs):
    def read(start, end):
        leads = [d for (k, _), d in docs.items() if k == "leads"
                 and d.get("created_at") and start <= d["created_at"] < end]
        ids = {d["_id"] for d in leads}
        return leads, [d for (k, _), d in docs.items() if k == "deals"
                       and any(f.get("lead_id") in ids for f in d["facts"])]
    return read


def _windows(rng, count=25):
    out = [(T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=30)),
           (T0.replace(hour=0), T0.replace(hour=0) + dt.timedelta(days=7))]
    for _ in range(count):
        start = T0 + dt.timedelta(minutes=rng.randrange(-2 * 1440, 21 * 1440))
        out.append((start, start + dt.timedelta(minutes=rng.randrange(30, 25 * 1440))))
    return out


@pytest.mark.parametrize("seed, bucket_seconds", [(1, 86400), (2, 86400), (3, 3600),
                                                  (4, 7 * 86400)])
def test_tallies_equal_the_computation_from_every_projection(seed, bucket_seconds):
    docs, live = _history(seed, bucket_seconds)
    for start, end in _windows(random.Random(seed)):
        for pipeline in ("default", CUSTOM, "no-such-pipeline"):
            want = _reference(docs, start, end, pipeline)
            assert live.funnel(start, end, pipeline) == want, \
                (start, end, pipeline)
            # before the state is restored: the tallies of the window's projections
            window = cohorts.Cohorts.of(*_edges(docs)(start, end), RULES, bucket_seconds)
            assert cohorts.summarise(RULES, *window.tallies(pipeline)) == want


def test_tallies_do_not_depend_on_the_order_facts_arrived_in():
    a, b = _history(5, 86400)[1], _history(5, 86400)[1]
    assert a.dump() == b.dump()
    docs, live = _history(5, 86400)
    fresh = cohorts.Cohorts.of([d for (k, _), d in docs.items() if k == "leads"],
                               [d for (k, _), d in docs.items() if k == "deals"], RULES,
                               86400)
    norm = lambda c: sorted(map(repr, c.dump()["buckets"]))  # noqa: E731
    assert norm(fresh) == norm(live)


def test_a_tie_between_two_deals_of_a_lead_counts_the_lowest_id():
    """Two deals of one lead that got equally far: the old code took whichever the
    database returned first, so the medians depended on the storage order."""
    lead = {"_id": "L", "rev": 1, "created_at": T0, "facts": [
        {"id": "l1", "type": "lead.created", "seq": 1, "time": T0, "status": "new",
         "created_at": T0, "source": "api"},
        {"id": "l2", "type": "lead.converted", "seq": 2, "time": T0, "status": "converted",
         "created_at": T0, "converted_at": T0, "source": "api"}]}

    def deal(did, hours):
        at = T0 + dt.timedelta(hours=hours)
        return {"_id": did, "rev": 1, "facts": [
            {"id": did, "type": "deal.created", "seq": 1, "time": at, "stage": "discovery",
             "pipeline_id": "default", "lead_id": "L", "created_at": at}]}
    one, two = deal("D1", 1), deal("D2", 5)
    assert domain.cohort_funnel([lead], [two, one], RULES)["transitions"][3] == {
        "from": "lead_converted", "to": "discovery", "conversion_rate": 1.0,
        "median_seconds": 3600.0, "samples": 1}
    assert domain.cohort_funnel([lead], [one, two], RULES) == \
        domain.cohort_funnel([lead], [two, one], RULES)


# --- snapshots -----------------------------------------------------------------------------


def _kpi_state(docs, decode=None):
    state = domain.Aggregates(decode=decode)
    for (kind, entity_id), doc in docs.items():
        state.replace(kind, entity_id, doc["rev"], domain.contribution(kind, doc, RULES))
    return state


PRINT = snapshot.fingerprint(RULES, 86400)


def _round_trip(docs, live):
    codec = snapshot.Codec()
    blob = snapshot.encode(snapshot.capture(_kpi_state(docs, codec.decode), live), codec,
                           T0, PRINT)
    return snapshot.decode(blob, PRINT, RULES, 86400)


def test_a_snapshot_restores_the_kpis_and_the_tallies_exactly():
    docs, live = _history(7, 86400)
    state, restored, watermark, codec = _round_trip(docs, live)
    expected = _kpi_state(docs)
    assert watermark == T0
    assert state.values == expected.values
    assert all(type(state.values[k]) is type(v) for k, v in expected.values.items())
    for kind, known in expected.entities.items():
        assert {i: (rev, codec.decode(c)) for i, (rev, c) in state.entities[kind].items()} \
            == known
    for start, end in _windows(random.Random(7), 5):
        assert restored.funnel(start, end, "default") == \
            live.funnel(start, end, "default")


def test_changes_after_a_restore_swap_the_restored_contributions_exactly():
    rng = random.Random(8)
    facts = _mixed_facts(rng)
    docs, live = {}, cohorts.Cohorts(RULES, 86400)
    for kind, entity_id, fact in facts[: len(facts) // 2]:
        live.absorb(kind, _apply(docs, kind, entity_id, fact))
    state, restored, _, _ = _round_trip(docs, live)
    for kind, entity_id, fact in facts[len(facts) // 2:]:
        doc = _apply(docs, kind, entity_id, fact)
        state.replace(kind, entity_id, doc["rev"], domain.contribution(kind, doc, RULES))
        restored.absorb(kind, doc)
    expected = _kpi_state(docs)
    assert {k: v for k, v in state.values.items() if v} == \
        {k: v for k, v in expected.values.items() if v}
    for start, end in _windows(rng, 10):
        assert restored.funnel(start, end, "default") == \
            _reference(docs, start, end, "default")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not json", "other rules",
                                    "other version", "bad tallies"])
def test_an_unusable_snapshot_is_refused(damage):
    import json
    import zlib
    docs, live = _history(9, 86400)
    codec = snapshot.Codec()
    blob = snapshot.encode(snapshot.capture(_kpi_state(docs), live), codec, T0, PRINT)
    payload = json.loads(zlib.decompress(blob))
    if damage == "truncated":
        blob = blob[: len(blob) // 2]
    elif damage == "garbage":
        blob = b"\x00" * 100
    elif damage == "not json":
        blob = zlib.compress(b"{not json")
    elif damage == "other rules":
        payload["rules"] = "0" * 64
    elif damage == "other version":
        payload["version"] = snapshot.VERSION + 1
    elif damage == "bad tallies":
        payload["cohorts"]["buckets"][0][3] = [1]
    if damage in ("other rules", "other version", "bad tallies"):
        blob = zlib.compress(json.dumps(payload).encode())
    with pytest.raises(snapshot.SnapshotError):
        snapshot.decode(blob, PRINT, RULES, 86400)


def test_the_codec_keeps_integers_and_decimals_exact():
    codec = snapshot.Codec()
    contrib = (domain.key("pipeline_amount", "proposal", "EUR"), domain.Decimal("12.3400"),
               domain.key("deal_cycle_seconds", "won", 3), 1,
               domain.key("deal_cycle_seconds:sum", "won"), 86400 * domain.MICROS)
    text = codec.encode(contrib)
    again = snapshot.Codec([[n, list(labels)] for n, labels in codec.keys])
    assert again.decode(text) == contrib
    assert str(again.decode(text)[1]) == "12.3400"
    assert codec.decode("") == ()


@pytest.mark.parametrize("seed", [6, 7])
def test_merged_blocks_and_the_median_search_equal_the_computation_while_facts_arrive(
        seed, monkeypatch):
    """Blocks of two hours and no window small enough to sort: every query goes through the
    merged blocks and the bisect median search, and each block merged before a later fact
    changed it is merged again."""
    monkeypatch.setattr(cohorts, "BLOCK", 2)
    monkeypatch.setattr(cohorts, "MERGE_BELOW", 0)
    facts = _mixed_facts(random.Random(seed))
    docs, live = {}, cohorts.Cohorts(RULES, 3600)
    windows = _windows(random.Random(seed), count=8)
    for n, (kind, entity_id, fact) in enumerate(facts):
        live.absorb(kind, _apply(docs, kind, entity_id, fact))
        if n % (len(facts) // 4) == 0 or n == len(facts) - 1:
            for start, end in windows:
                for pipeline in ("default", CUSTOM):
                    assert live.funnel(start, end, pipeline) == \
                        _reference(docs, start, end, pipeline), (n, start, end, pipeline)
    assert live.blocks  # the queries above used merged blocks
