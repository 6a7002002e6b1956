"""Activities and tasks: one model for the leads and deals services, pure.

An activity is a call, e-mail, meeting or note someone logged: an entry with who, when
(`at`, when it happened; `recorded_at`, when it was logged), outcome, summary and length.
A task is something to do by `due_at` for the record it belongs to (a lead or a deal):
open until completed or cancelled; when it falls due while open, its service fires one
reminder event. `fired` means "no reminder pending" (fired, or finished before it was
due), so the due query is one indexed range on (fired, due_at), and the write that sets
it is the claim that makes N instances fire a reminder once.
"""
import uuid

from kit.changes import Change
from kit.errors import Conflict

TYPES = ("call", "email", "meeting", "note")
# A note is written for colleagues, not to the customer: no response to anyone.
RESPONSE_TYPES = frozenset(("call", "email", "meeting"))
OPEN, COMPLETED, CANCELLED = "open", "completed", "cancelled"
TASK_STATES = (OPEN, COMPLETED, CANCELLED)


def millis(moment):
    """MongoDB keeps milliseconds; trimming first keeps documents and events equal."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def entry(activity, now, actor=None):
    """The stored form of a logged activity (`activity` as its schema loaded it)."""
    return {
        "id": str(uuid.uuid4()),
        "type": activity["type"],
        "at": millis(activity.get("at") or now),
        "actor": actor,  # the token's subject, never the body (DESIGN "People")
        "outcome": activity.get("outcome"),
        "summary": activity.get("summary"),
        "duration_minutes": activity.get("duration_minutes"),
        "recorded_at": millis(now),
    }


def timeline(entries):
    return sorted(entries, key=lambda a: (a["at"], a.get("recorded_at") or a["at"]))


def new_task(parent_key, parent_id, data, task_id, now, owner_id=None, actor=None):
    """A task of the record `parent_key` = `parent_id` (lead_id or deal_id)."""
    return {
        "_id": task_id, parent_key: parent_id, "due_at": millis(data["due_at"]),
        "title": data.get("title"), "note": data.get("note"), "owner_id": owner_id,
        "status": OPEN, "created_by": actor, "created_at": millis(now),
        "fired": False, "fired_at": None, "finished_at": None, "finished_by": None,
        "version": 0,
    }


def finish(task, outcome, now, actor=None):
    """Complete or cancel an open task (Conflict once it is finished)."""
    status = task.get("status") or OPEN
    if status != OPEN:
        raise Conflict(f"The task is {status} already.", current=status)
    return Change(set={"status": outcome, "fired": True, "finished_at": millis(now),
                       "finished_by": actor}, actor=actor)


def due(task, parent_open, now, event):
    """A due task's reminder, once: `event` (type, data) while its record is open, else
    the task is retired quietly (nobody needs a reminder for a closed record). None when
    it is not pending or not due."""
    if task["fired"] or (task.get("status") or OPEN) != OPEN or task["due_at"] > now:
        return None
    change = Change(set={"fired": True, "fired_at": millis(now)})
    if not parent_open:
        change.set.update(status=CANCELLED, finished_at=millis(now), cancelled=True)
    else:
        change.events.append(event)
    return change
