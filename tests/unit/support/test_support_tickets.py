"""Ticket lifecycle, replies, SLA checks and ratings: the changes and the events they
cause, checked against the event catalog."""
import datetime as dt

import pytest

from kit.events import new_event
from kit.http import problem_from_exception
from support import domain as D

T0 = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Shanghai
H = dt.timedelta(hours=1)
CTX = D.SlaContext({
    "time_zone": "Asia/Shanghai", "warning_fraction": 0.5,
    "calendars": {"business": {"hours": [["09:00", "18:00"]]}},
    "policies": {"default": {
        "normal": {"first_response_minutes": 120, "resolution_minutes": 480},
        "urgent": {"first_response_minutes": 30, "resolution_minutes": 240,
                   "calendar": "24x7"}}}})


def ticket(**fields):
    data = {"account": "acc-1", "contact": {"name": "Li Lei"}, "deal_id": None,
            "subject": "Printer on fire", "description": "...", "channel": "email",
            "priority": "normal", "category": "hardware", "tier": None, **fields}
    doc, events = D.new_ticket(data, "t-1", T0, CTX)
    doc["version"] = len(events)
    return doc, events


def apply(doc, change):
    return {**doc, **change.set, "version": doc["version"] + len(change.events)}


def check_contract(events):
    for etype, data in events:
        new_event(etype, "t-1", data, 1)


def test_a_new_ticket_is_queued_with_running_clocks():
    doc, events = ticket()
    assert (doc["status"], doc["assignee"], doc["queued_at"]) == ("new", None, T0)
    clocks = doc["sla"]["clocks"]
    assert clocks["first_response"]["due_at"] == T0 + 2 * H
    assert clocks["resolution"]["due_at"] == T0 + 8 * H
    assert doc["sla_due_at"] == T0 + H  # the first-response warning (50 %)
    [(etype, data)] = events
    assert etype == "ticket.opened" and data["first_response_due"] == T0 + 2 * H
    check_contract(events)


ALL_MOVES = [(frm, to) for frm in D.STATUSES for to in D.STATUSES]


def at_status(status):
    doc, _ = ticket()
    doc = apply(doc, D.assign(doc, "a1", T0, rule="dispatch"))
    path = {"new": [], "open": [], "pending": ["pending"], "resolved": ["resolved"],
            "closed": ["resolved", "closed"]}[status]
    if status == "new":
        doc, _ = ticket()
    for step in path:
        doc = apply(doc, D.move(doc, step, T0, CTX, reopen_days=7))
    assert doc["status"] == status
    return doc


@pytest.mark.parametrize("frm, to", ALL_MOVES)
def test_every_move_is_allowed_or_refused_naming_the_allowed_ones(frm, to):
    doc = at_status(frm)
    if to in D.MOVES[frm]:
        change = D.move(doc, to, T0 + H, CTX, reopen_days=7)
        assert change.set["status"] == to
        assert change.events[0][0] == "ticket.status_changed"
        assert (change.events[0][1]["from_status"], change.events[0][1]["to_status"]) == \
            (frm, to)
        check_contract(change.events)
        return
    with pytest.raises(D.InvalidMove) as caught:
        D.move(doc, to, T0 + H, CTX, reopen_days=7)
    assert caught.value.extra["allowed"] == list(D.MOVES[frm])
    response = problem_from_exception(caught.value)
    assert response.status_code == 409
    assert all(name in caught.value.detail for name in D.MOVES[frm])


def test_pending_pauses_the_clocks_and_open_resumes_them():
    doc = at_status("open")
    doc = apply(doc, D.move(doc, "pending", T0 + H, CTX, reopen_days=7))
    assert doc["sla_due_at"] is None
    # a day later (Tuesday 09:00) the customer answers: 1h of 2h first response left
    change = D.reply(doc, "customer", True, T0 + 24 * H, CTX)
    assert change.set["status"] == "open"
    doc = apply(doc, change)
    assert doc["sla"]["clocks"]["first_response"]["due_at"] == T0 + 25 * H
    assert doc["sla"]["clocks"]["resolution"]["due_at"] == T0 + 31 * H


def test_first_public_agent_reply_responds_once_notes_do_not():
    doc = at_status("open")
    assert D.reply(doc, "agent", False, T0 + H, CTX) is None
    change = D.reply(doc, "agent", True, T0 + H, CTX, agent_id="a1")
    [(etype, data)] = change.events
    assert etype == "ticket.first_responded"
    assert (data["first_response_seconds"], data["sla_met"], data["agent_id"]) == \
        (3600, True, "a1")
    check_contract(change.events)
    doc = apply(doc, change)
    assert doc["sla"]["clocks"]["first_response"]["stopped_at"] == T0 + H
    assert doc["sla_due_at"] == T0 + 4 * H  # the resolution warning now
    assert D.reply(doc, "agent", True, T0 + 2 * H, CTX) is None
    assert D.reply(doc, "customer", True, T0 + 2 * H, CTX) is None  # open stays open


def test_a_late_first_response_is_not_met():
    doc = at_status("open")
    change = D.reply(doc, "agent", True, T0 + 3 * H, CTX)
    assert change.events[0][1]["sla_met"] is False


def test_resolve_then_reopen_within_the_window_requeues_with_the_previous_agent():
    doc = at_status("open")
    doc = apply(doc, D.move(doc, "resolved", T0 + 2 * H, CTX, reopen_days=7))
    assert doc["resolutions"] == 1 and doc["sla_due_at"] is None
    change = D.move(doc, "open", T0 + 6 * 24 * H, CTX, reopen_days=7, reason="still broken")
    assert [e for e, _ in change.events] == ["ticket.status_changed", "ticket.reopened"]
    check_contract(change.events)
    assert (change.set["assignee"], change.set["previous_assignee"]) == (None, "a1")
    assert change.set["queued_at"] == T0 + 6 * 24 * H
    with pytest.raises(D.ReopenExpired, match="within 7 days") as caught:
        D.move(doc, "open", T0 + 8 * 24 * H, CTX, reopen_days=7)
    assert problem_from_exception(caught.value).status_code == 409


def test_resolved_event_says_whether_the_target_was_met():
    doc = at_status("open")
    change = D.move(doc, "resolved", T0 + 9 * H, CTX, reopen_days=7)
    [_, (etype, data)] = change.events
    assert etype == "ticket.resolved"
    assert (data["resolution"], data["sla_met"], data["resolution_seconds"]) == \
        (1, False, 9 * 3600)
    check_contract(change.events)


def test_assign_opens_a_new_ticket_and_reassign_names_the_previous_agent():
    doc, _ = ticket()
    change = D.assign(doc, "a1", T0, rule="dispatch")
    assert [e for e, _ in change.events] == ["ticket.assigned", "ticket.status_changed"]
    check_contract(change.events)
    doc = apply(doc, change)
    assert (doc["status"], doc["queued_at"]) == ("open", None)
    assert D.assign(doc, "a1", T0, rule="manual") is None
    change = D.assign(doc, "a2", T0, rule="manual")
    assert change.events == [("ticket.assigned", {
        "ticket_id": "t-1", "priority": "normal", "category": "hardware", "agent_id": "a2",
        "rule": "manual", "previous_agent_id": "a1"})]
    back = D.requeue(doc, T0 + H)
    assert back.set["queued_at"] == T0 + H and back.events[0][1]["agent_id"] is None
    check_contract(back.events)


@pytest.mark.parametrize("act", [
    lambda doc: D.reply(doc, "customer", True, T0, CTX),
    lambda doc: D.assign(doc, "a2", T0, rule="manual"),
    lambda doc: D.requeue(doc, T0),
], ids=["reply", "assign", "unassign"])
def test_closed_tickets_take_no_replies_or_assignments(act):
    doc = at_status("closed")
    with pytest.raises(D.InvalidMove) as caught:
        act(doc)
    assert problem_from_exception(caught.value).status_code == 409


def test_closing_takes_a_queued_ticket_out_of_the_queue():
    doc, _ = ticket()  # new and queued: nobody could take it yet
    doc = apply(doc, D.move(doc, "resolved", T0 + H, CTX, reopen_days=7))
    change = D.move(doc, "closed", T0 + 2 * H, CTX, reopen_days=7)
    assert change.set["queued_at"] is None


# closed and queued at once: what un-assigning a closed ticket stored before it was refused
@pytest.mark.parametrize("status, dispatchable", [(s, s != "closed") for s in D.STATUSES])
def test_a_queued_ticket_is_dispatchable_unless_closed(status, dispatchable):
    doc = {**at_status(status), "assignee": None, "queued_at": T0}
    assert D.dispatchable(doc) is dispatchable
    assert D.dispatchable({**doc, "queued_at": None}) is False


def test_sla_check_warns_then_breaches_once():
    doc = at_status("open")
    assert D.check_sla(doc, T0 + 0.5 * H) is None
    change = D.check_sla(doc, T0 + H)
    assert [(e, d["kind"]) for e, d in change.events] == [("ticket.sla_warning",
                                                           "first_response")]
    check_contract(change.events)
    doc = apply(doc, change)
    assert doc["sla_due_at"] == T0 + 2 * H
    change = D.check_sla(doc, T0 + 4 * H)
    assert [(e, d["kind"]) for e, d in change.events] == [
        ("ticket.sla_breached", "first_response"), ("ticket.sla_warning", "resolution")]
    check_contract(change.events)
    doc = apply(doc, change)
    assert D.check_sla(doc, T0 + 5 * H) is None


def test_urgent_tickets_run_on_24x7():
    doc, _ = ticket(priority="urgent")
    saturday = dt.datetime(2026, 3, 7, 3, tzinfo=dt.UTC)
    doc, _ = D.new_ticket({**doc, "priority": "urgent"}, "t-2", saturday, CTX)
    assert doc["sla"]["clocks"]["first_response"]["due_at"] == saturday + 0.5 * H


def test_rating_once_per_resolution():
    doc = at_status("resolved")
    change = D.rate(doc, 1, 5, "great", T0)
    check_contract(change.events)
    rated = apply(doc, change)
    with pytest.raises(D.AlreadyRated):
        D.rate(rated, 1, 4, None, T0)
    reopened = apply(rated, D.move(rated, "open", T0 + H, CTX, reopen_days=7))
    with pytest.raises(D.NotRatable):
        D.rate(reopened, 1, 4, None, T0)
    again = apply(reopened, D.move(reopened, "resolved", T0 + 2 * H, CTX, reopen_days=7))
    assert D.rate(again, 2, 3, None, T0).events[0][1]["resolution"] == 2
    with pytest.raises(D.NotRatable):
        D.rate(again, 1, 3, None, T0)


def test_a_links_view_says_what_it_can_still_do():
    doc = at_status("resolved")
    assert D.rating_state(doc, 1) == "ratable"
    rated = apply(doc, D.rate(doc, 1, 5, "great", T0))
    assert D.rating_state(rated, 1) == "rated"
    reopened = apply(rated, D.move(rated, "open", T0 + H, CTX, reopen_days=7))
    assert (D.rating_state(reopened, 1), D.rating_state(reopened, 2)) == ("rated", "reopened")
    again = apply(reopened, D.move(reopened, "resolved", T0 + 2 * H, CTX, reopen_days=7))
    assert (D.rating_state(again, 1), D.rating_state(again, 2)) == ("rated", "ratable")
    unrated = apply(doc, D.move(doc, "open", T0 + H, CTX, reopen_days=7))
    assert D.rating_state(unrated, 1) == "reopened"


# schemathesis: JSON booleans are true or false, as the OpenAPI document says; marshmallow's
# Boolean took 0, 1, "yes"... as well
@pytest.mark.parametrize(("schema", "field", "value"), [
    ("ReplyIn", "public", 0), ("ReplyIn", "public", 1), ("ReplyIn", "public", "true"),
    ("ReplyIn", "public", None), ("AgentIn", "available", 0), ("AgentIn", "available", "yes"),
])
def test_a_json_boolean_is_true_or_false_only(schema, field, value):
    from support import schemas as S
    body = {"body": "hello", field: value} if schema == "ReplyIn" else {field: value}
    assert field in getattr(S, schema)().validate(body)


@pytest.mark.parametrize(("schema", "field"), [("ReplyIn", "public"),
                                               ("AgentIn", "available")])
def test_a_json_boolean_takes_true_and_false(schema, field):
    from support import schemas as S
    for value in (True, False):
        body = {"body": "hello", field: value} if schema == "ReplyIn" else {field: value}
        assert getattr(S, schema)().validate(body) == {}
