"""Deal activities and tasks (deals.activities, kit.activities): pure."""
import datetime as dt

import pytest

from deals import activities as A
from deals import pipelines as P
from kit import activities
from kit.errors import Conflict
from kit.events import new_event

T0 = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.UTC)
PIPELINE = P.default_pipeline()


def deal(status="open", **extra):
    return {"_id": "D1", "pipeline_id": "default", "stage": "discovery", "status": status,
            "owner_id": "rep-1", "lead_id": "L1", "last_activity_at": T0, **extra}


def test_an_activity_is_its_own_document_with_its_event():
    doc, events = A.log(deal(), {"type": "call", "summary": "hi"}, "A1",
                        T0 + dt.timedelta(hours=1), "ann")
    assert (doc["_id"], doc["deal_id"], doc["stage"], doc["actor"]) == ("A1", "D1",
                                                                       "discovery", "ann")
    [(etype, data)] = events
    assert etype == "deal.activity_logged" and data["activity_id"] == "A1"
    new_event(etype, "A1", data, 1)


def test_activity_restarts_the_stall_clock_of_an_open_deal_only():
    later = T0 + dt.timedelta(days=1)
    change = A.worked_on(PIPELINE, deal(stalled_at=T0), later)
    assert change.set["last_activity_at"] == later and change.set["stalled_at"] is None
    assert change.events == []
    assert A.worked_on(PIPELINE, deal("won"), later) is None
    assert A.worked_on(PIPELINE, deal(), T0 - dt.timedelta(days=1)) is None


def task(**extra):
    return {**activities.new_task("deal_id", "D1", {"due_at": T0, "title": "call"}, "T1",
                                  T0 - dt.timedelta(days=1), owner_id="rep-1"), **extra}


def test_a_due_task_fires_once_for_an_open_deal():
    change = A.task_due(task(), deal(), T0)
    [(etype, data)] = change.events
    assert etype == "deal.task_due" and change.set["fired"] is True
    new_event(etype, "T1", data, 1)
    assert A.task_due(task(fired=True), deal(), T0) is None
    assert A.task_due(task(), deal(), T0 - dt.timedelta(seconds=1)) is None


def test_a_task_of_a_closed_deal_retires_quietly():
    change = A.task_due(task(), deal("lost"), T0)
    assert change.events == [] and change.set["status"] == "cancelled"


@pytest.mark.parametrize("outcome", [activities.COMPLETED, activities.CANCELLED])
def test_finishing_a_task_ends_its_reminder_and_only_once(outcome):
    change = activities.finish(task(), outcome, T0, "ann")
    assert change.set["status"] == outcome and change.set["fired"] is True
    with pytest.raises(Conflict):
        activities.finish(task(status=outcome), outcome, T0)


def test_a_closed_deal_takes_no_new_task():
    with pytest.raises(Conflict):
        A.new_task(deal("won"), {"due_at": T0, "title": "x"}, "T2", T0)


def test_the_timeline_merges_deal_and_lead_entries_in_time_order():
    own = [{"_id": "A1", "type": "meeting", "at": T0, "recorded_at": T0}]
    lead = [{"id": "x", "type": "call", "at": T0 - dt.timedelta(days=2),
             "recorded_at": T0 - dt.timedelta(days=2)}]
    assert [(e["source"], e["type"]) for e in A.timeline(own, lead)] == [
        ("lead", "call"), ("deal", "meeting")]


def test_a_gate_refusal_names_custom_fields_with_their_labels():
    from deals import domain as D
    from deals import fields as DF

    gate = D.GateNotMet("Cannot enter stage 'proposal'; missing fields: budget_code, amount.",
                        stage="proposal", missing_fields=["budget_code", "amount"],
                        missing_checklist=[])
    named = DF.labelled(gate, {"budget_code": {"key": "budget_code", "labels": {
        "en": "Budget code", "zh-CN": "预算编号"}}})
    assert named.detail == ("Cannot enter stage 'proposal'; missing fields: "
                            "budget_code (Budget code), amount.")
    assert named.extra["missing_fields"] == ["budget_code", "amount"]
