"""What an instance's KPI refresh reads of other instances' writes: only the projections
changed since its watermark (the newest database stamp it read), not again every
projection of a fixed window behind its own clock; never its own writes, its watermark
following them all the same; and no write is missed when another collection's newer stamp
was read in the same refresh."""
import datetime as dt
import itertools

import eventlet

from kit.events import new_event, parse_event
from kit.fields import utcnow
from kit.mongo import Store
from metrics.live import LiveKpis
from metrics.service import MetricsService
from metrics.store import MetricsStore
from tests.integration.metrics.test_metrics_projections import wait_for

# a window behind the instance's clock far longer than the test: without the stamp
# watermark every refresh would read all the test's projections again
KPIS = {"refresh_seconds": 0.2, "refresh_busy_seconds": 0.05,
        "refresh_overlap_seconds": 600,
        # one writer, one write at a time: the stamps are in commit order anyway
        "stamp_overlap_seconds": 0}
SEQ = itertools.count()


class ReadsStore(MetricsStore):
    """Records the ids each refresh query returned, and where each began (kind, since)."""

    reads = []
    starts = []

    def changed_projections(self, kind, since, skip_writer=None):
        found = list(super().changed_projections(kind, since, skip_writer))
        type(self).reads.append([doc["_id"] for doc in found])
        type(self).starts.append((kind, since))
        return found


class ReadingMetrics(MetricsService):
    store = Store(ReadsStore)


class RacedStore(MetricsStore):
    """Once `race` is set: right after a refresh read the leads, another instance writes a
    lead and then, a little later, a deal, which that same refresh reads next."""

    race = None

    def changed_projections(self, kind, since, skip_writer=None):
        found = list(super().changed_projections(kind, since, skip_writer))
        race, type(self).race = type(self).race, None
        if kind == "leads" and race is not None:
            race()
        return found


class RacedMetrics(MetricsService):
    store = Store(RacedStore)


def deal_created(did):
    envelope, data = parse_event(new_event("deal.created", did, {
        "deal_id": did, "pipeline_id": "default", "stage": "discovery", "name": "x",
        "amount": "100.00", "currency": "EUR", "probability": 10,
        "created_at": utcnow()}, 1))
    return {**envelope, "data": data}


def created(n):
    """A lead.created as the batch handler hands it over (parsed)."""
    lead_id = f"lead-{n}-{next(SEQ)}"
    envelope, data = parse_event(new_event("lead.created", lead_id, {
        "lead_id": lead_id, "name": "x", "source": "api", "score": 0, "grade": "D",
        "created_at": utcnow()}, 1))
    return {**envelope, "data": data}


def leads_counted(container):
    live = next(d for d in container.dependencies if isinstance(d, LiveKpis))
    return live.state.entity_count("leads"), live


def test_a_refresh_reads_only_what_changed_since_its_watermark(
        container_factory, make_config, mongo_db, monkeypatch):
    monkeypatch.setattr(ReadsStore, "reads", [])
    container = container_factory(ReadingMetrics, make_config("metrics", KPIS=KPIS))
    container.start()
    other = MetricsStore(mongo_db)  # another instance's writes
    other.ensure_indexes()

    first = [created(n) for n in range(20)]
    other.apply_batch(first)
    assert wait_for(lambda: leads_counted(container)[0] == 20)
    _, live = leads_counted(container)
    passes = live.passes
    assert wait_for(lambda: live.passes >= passes + 2)  # a refresh begun before is done
    newest = max(d["updated_at"] for d in mongo_db.leads.find({}, {"updated_at": 1}))
    last_of_first = {d["_id"] for d in mongo_db.leads.find({"updated_at": newest}, {"_id": 1})}
    mark = len(ReadsStore.reads)

    later = [created(n) for n in range(3)]
    other.apply_batch(later)
    assert wait_for(lambda: leads_counted(container)[0] == 23)
    read_again = {_id for ids in ReadsStore.reads[mark:] for _id in ids}
    # the later projections, and at most the first ones stamped the newest stamp read
    # (the watermark is inclusive)
    assert {e["subject"] for e in later} <= read_again
    assert read_again - {e["subject"] for e in later} <= last_of_first


def test_a_write_committed_during_a_refresh_is_read_by_the_next(
        container_factory, make_config, mongo_db, monkeypatch):
    monkeypatch.setattr(RacedStore, "race", None)
    container = container_factory(RacedMetrics, make_config("metrics", KPIS=KPIS))
    container.start()
    other = MetricsStore(mongo_db)
    other.ensure_indexes()
    _, live = leads_counted(container)
    assert wait_for(lambda: live.ready)
    lead = created(0)

    def race():
        other.apply_batch([lead])
        eventlet.sleep(0.01)  # the deal's stamp is later than the lead's
        other.apply_batch([deal_created(f"deal-{next(SEQ)}")])

    RacedStore.race = race
    assert wait_for(lambda: live.state.entity_count("deals") == 1)
    assert wait_for(lambda: leads_counted(container)[0] == 1)


def test_a_refresh_skips_the_instances_own_writes_and_its_watermark_follows_them(
        container_factory, make_config, mongo_db, publish, monkeypatch):
    monkeypatch.setattr(ReadsStore, "reads", [])
    monkeypatch.setattr(ReadsStore, "starts", [])
    container = container_factory(ReadingMetrics, make_config("metrics", KPIS=KPIS))
    container.start()
    _, live = leads_counted(container)
    assert wait_for(lambda: live.ready)

    own = [new_event("lead.created", lead_id, {
        "lead_id": lead_id, "name": "x", "source": "api", "score": 0, "grade": "D",
        "created_at": utcnow()}, 1) for lead_id in (f"own-{next(SEQ)}" for _ in range(20))]
    publish(own)  # the container applies these itself
    assert wait_for(lambda: leads_counted(container)[0] == 20)
    passes = live.passes
    assert wait_for(lambda: live.passes >= passes + 3)

    # it took them in as it wrote them: no refresh reads them back ...
    read = {_id for ids in ReadsStore.reads for _id in ids}
    assert not read & {body["subject"] for body in own}
    # ... and its queries begin after them, not refresh_overlap_seconds behind its clock
    newest = max(d["updated_at"] for d in mongo_db.leads.find({}, {"updated_at": 1}))
    since = [start for kind, start in ReadsStore.starts if kind == "leads"][-1]
    assert since >= newest - dt.timedelta(seconds=KPIS["stamp_overlap_seconds"])
