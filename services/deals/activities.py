"""A deal's activities and tasks, pure: the model leads use too (kit.activities).

An activity is its own document (a deal's communication grows without bound; the deal
document stays small) carrying `deal.activity_logged` in its outbox, so the record and
its event are one insert. Logging one also restarts the deal's stall clock: a deal that
is being worked on is not idle. A task belongs to a deal; while the deal is open, a due
task fires `deal.task_due` once (kit.activities.due), else it is retired quietly.

Events of activities and tasks have the activity's or task's id as subject (their own
sequence), so the deal's event sequence stays the deal's.
"""
from deals import domain
from deals import pipelines as P
from kit import activities
from kit.errors import Conflict


def log(deal, data, activity_id, now, actor=None):
    """(activity document, its events) for an activity logged on `deal`."""
    entry = activities.entry(data, now, actor)
    doc = {**entry, "_id": activity_id, "deal_id": deal["_id"], "stage": deal["stage"],
           "lead_id": deal.get("lead_id")}
    doc.pop("id")
    return doc, [("deal.activity_logged", {
        "deal_id": deal["_id"], "activity_id": activity_id, "type": doc["type"],
        "pipeline_id": deal["pipeline_id"], "stage": deal["stage"],
        "owner_id": deal.get("owner_id"), "at": doc["at"]})]


def worked_on(pipeline, deal, at, *, day_seconds=86400):
    """The deal's stall clock restarts at `at` (no event: no state a subscriber tracks
    changes). None for a closed deal, or an activity older than the last one."""
    if deal["status"] != domain.OPEN or (deal.get("last_activity_at") and
                                         at <= deal["last_activity_at"]):
        return None
    stage = P.stage_of(pipeline, deal["stage"])
    return domain.Change(set={"last_activity_at": at, "stalled_at": None,
                              "stall_due_at": domain.stall_due_at(stage, at, day_seconds)},
                         events=[])


def new_task(deal, data, task_id, now, actor=None):
    if deal["status"] != domain.OPEN:
        raise Conflict(f"The deal is {deal['status']}; reopen it first.",
                       deal_status=deal["status"])
    return activities.new_task("deal_id", deal["_id"], data, task_id, now,
                               owner_id=data.get("owner_id") or deal.get("owner_id"),
                               actor=actor)


def task_due(task, deal, now):
    """deal.task_due once for a due open task of an open deal (see kit.activities.due)."""
    event = ("deal.task_due", {
        "deal_id": task["deal_id"], "task_id": task["_id"], "owner_id": task.get("owner_id"),
        "due_at": task["due_at"], "title": task.get("title")})
    return activities.due(task, deal is not None and deal["status"] == domain.OPEN, now,
                          event)


def timeline(logged, lead_entries=()):
    """The deal's activities and its lead's (each saying where it comes from), in order."""
    own = [{**a, "id": a["_id"], "source": "deal"} for a in logged]
    lead = [{**a, "source": "lead"} for a in lead_entries]
    return activities.timeline(own + lead)
