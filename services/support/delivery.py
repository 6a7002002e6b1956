"""Delivery projects: a won deal's onboarding checklist. Pure: functions return the project
or the change (kit.changes.Change) and the events they cause.

One project per deal: its id derives from the deal's, so a redelivered (or a second)
deal.won finds it there. The checklist comes from the template of the deal's pipeline
(or the default one), each step due a number of days after the win. Steps complete once;
the acceptance step, last, completes the project and emits delivery.accepted (the
"on delivery acceptance" payment milestone listens to it). `next_due_at`, the earliest due
time of a step not done, is indexed: overdue projects are those with it in the past.
"""
import datetime as dt

from kit.changes import Change
from kit.errors import Conflict, Invalid, NotFound

OPEN, ACCEPTED = "open", "accepted"
DEFAULT_TEMPLATE = "default"


class StepOrder(Conflict):
    title = "Steps still open"


def project_id(deal_id):
    return f"dlv-{deal_id}"


def template_for(templates, pipeline_id):
    """(name, steps) of the pipeline's template, else the default one."""
    name = pipeline_id if pipeline_id in templates else DEFAULT_TEMPLATE
    steps = templates.get(name)
    if not steps:
        raise Invalid(f"No delivery template for pipeline {pipeline_id!r} and no default.")
    return name, steps


def next_due(steps):
    due = [s["due_at"] for s in steps if s["done_at"] is None and s["due_at"] is not None]
    return min(due) if due else None


def new_project(deal, templates, now, *, owner=None):
    """(project, events) for a won deal (the data of deal.won)."""
    name, template = template_for(templates, deal.get("pipeline_id"))
    won_at = deal.get("won_at") or now
    steps = [{"key": s["key"], "name": s.get("name", s["key"]),
              "due_at": won_at + dt.timedelta(days=float(s["due_days"]))
              if s.get("due_days") is not None else None,
              "done_at": None, "done_by": None} for s in template]
    project = {
        "_id": project_id(deal["deal_id"]), "deal_id": deal["deal_id"],
        "pipeline_id": deal.get("pipeline_id"), "account": deal.get("account"),
        "owner_id": owner or deal.get("owner_id"), "template": name, "status": OPEN,
        "steps": steps, "won_at": won_at, "accepted_at": None,
        "next_due_at": next_due(steps), "created_at": now, "updated_at": now,
    }
    return project, [("delivery.opened", {
        "delivery_id": project["_id"], "deal_id": project["deal_id"],
        "pipeline_id": project["pipeline_id"], "account": project["account"],
        "owner_id": project["owner_id"], "template": name,
        "steps": [s["key"] for s in steps], "won_at": won_at,
        "due_at": max((s["due_at"] for s in steps if s["due_at"]), default=None),
        "opened_at": now})]


def overdue(step, now):
    return step["done_at"] is None and step["due_at"] is not None and step["due_at"] < now


def complete(project, key, now, *, acceptance_step, actor=None):
    """Tick step `key`; None if it was done already (a repeated request)."""
    step = next((s for s in project["steps"] if s["key"] == key), None)
    if step is None:
        raise NotFound(f"No step {key!r} in delivery project {project['_id']}.",
                       steps=[s["key"] for s in project["steps"]])
    if step["done_at"] is not None:
        return None
    if key == acceptance_step:
        still = [s["key"] for s in project["steps"] if s["done_at"] is None and s["key"] != key]
        if still:
            raise StepOrder(f"Acceptance comes last; still open: {', '.join(still)}.",
                            open_steps=still)
    steps = [{**s, "done_at": now, "done_by": actor} if s["key"] == key else s
             for s in project["steps"]]
    events = [("delivery.step_completed", {
        "delivery_id": project["_id"], "deal_id": project["deal_id"], "step": key,
        "due_at": step["due_at"], "completed_at": now, "overdue": overdue(step, now)})]
    changes = {"steps": steps, "next_due_at": next_due(steps), "updated_at": now}
    if key == acceptance_step:
        changes.update({"status": ACCEPTED, "accepted_at": now})
        events.append(("delivery.accepted", {
            "delivery_id": project["_id"], "deal_id": project["deal_id"],
            "account": project.get("account"), "won_at": project.get("won_at"),
            "accepted_at": now}))
    return Change(set=changes, events=events, actor=actor)
