"""Delivery projects: one per deal from its pipeline's template, steps completed once,
acceptance last (delivery.accepted), overdue steps."""
import datetime as dt

import pytest

from kit.events import new_event
from kit.http import problem_from_exception
from support import delivery as V

WON = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
TEMPLATES = {
    "default": [{"key": "kickoff", "name": "Kick-off", "due_days": 3},
                {"key": "acceptance", "name": "Acceptance", "due_days": 30}],
    "hardware": [{"key": "kickoff", "due_days": 2}, {"key": "installation", "due_days": 10},
                 {"key": "training"}, {"key": "acceptance", "due_days": 20}],
}


def won(pipeline_id="default", **data):
    return {"deal_id": "d-1", "pipeline_id": pipeline_id, "owner_id": "rep-1",
            "account": "Acme", "won_at": WON, **data}


def check_contract(events):
    for etype, data in events:
        new_event(etype, "dlv-d-1", data, 1)


@pytest.mark.parametrize("pipeline, steps, template", [
    ("default", ["kickoff", "acceptance"], "default"),
    ("hardware", ["kickoff", "installation", "training", "acceptance"], "hardware"),
    ("unknown", ["kickoff", "acceptance"], "default"),
])
def test_the_pipelines_template_or_the_default(pipeline, steps, template):
    project, events = V.new_project(won(pipeline), TEMPLATES, WON + DAY)
    assert [s["key"] for s in project["steps"]] == steps
    assert (project["_id"], project["template"], project["owner_id"]) == \
        ("dlv-d-1", template, "rep-1")
    check_contract(events)
    assert events[0][1]["steps"] == steps


def test_due_dates_count_from_the_win_and_next_due_is_the_earliest_open():
    project, _ = V.new_project(won("hardware"), TEMPLATES, WON + DAY, owner="pm-1")
    assert [s["due_at"] for s in project["steps"]] == [WON + 2 * DAY, WON + 10 * DAY, None,
                                                       WON + 20 * DAY]
    assert project["next_due_at"] == WON + 2 * DAY and project["owner_id"] == "pm-1"
    change = V.complete(project, "kickoff", WON + 3 * DAY, acceptance_step="acceptance")
    [(etype, data)] = change.events
    assert etype == "delivery.step_completed" and data["overdue"] is True
    check_contract(change.events)
    assert change.set["next_due_at"] == WON + 10 * DAY
    assert V.overdue(project["steps"][1], WON + 11 * DAY)
    assert not V.overdue(project["steps"][2], WON + 100 * DAY)  # no due date


def test_acceptance_last_emits_delivery_accepted():
    project, _ = V.new_project(won(), TEMPLATES, WON)
    with pytest.raises(V.StepOrder, match="still open: kickoff") as caught:
        V.complete(project, "acceptance", WON + DAY, acceptance_step="acceptance")
    assert problem_from_exception(caught.value).status_code == 409
    project = {**project, **V.complete(project, "kickoff", WON + DAY,
                                       acceptance_step="acceptance").set}
    assert V.complete(project, "kickoff", WON + DAY, acceptance_step="acceptance") is None
    change = V.complete(project, "acceptance", WON + 2 * DAY, acceptance_step="acceptance",
                        actor="u1")
    assert [e for e, _ in change.events] == ["delivery.step_completed", "delivery.accepted"]
    check_contract(change.events)
    assert (change.set["status"], change.set["accepted_at"], change.set["next_due_at"]) == \
        ("accepted", WON + 2 * DAY, None)


def test_unknown_step_and_missing_template():
    project, _ = V.new_project(won(), TEMPLATES, WON)
    with pytest.raises(V.NotFound, match="No step 'nope'"):
        V.complete(project, "nope", WON, acceptance_step="acceptance")
    with pytest.raises(V.Invalid, match="No delivery template"):
        V.new_project(won("x"), {"hardware": TEMPLATES["hardware"]}, WON)
