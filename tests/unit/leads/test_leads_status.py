"""The lead state machine, table-driven: every move, allowed or not, and what it emits."""
import datetime as dt
import itertools

import pytest

from kit.errors import Conflict, Invalid
from kit.events import new_event
from leads import domain
from leads.domain import LeadRules

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
RULES = LeadRules(scoring=(), grades={"A": 60, "B": 35, "C": 15})

ALLOWED = {
    ("new", "contacted"), ("new", "disqualified"),
    ("contacted", "qualified"), ("contacted", "disqualified"),
    ("qualified", "converted"), ("qualified", "disqualified"),
    # a nurtured lead (leads.editing.recycle put it there) moves on as an open one
    ("nurture", "contacted"), ("nurture", "qualified"), ("nurture", "disqualified"),
}
EVENT_OF = {
    "contacted": ["lead.contacted"], "qualified": ["lead.qualified"],
    "disqualified": ["lead.disqualified"], "converted": ["lead.converted"],
}
EVERY_MOVE = list(itertools.product(domain.STATUSES, domain.STATUSES))


def lead(status="new", **extra):
    doc = {"_id": "L1", "name": "Ada", "company": "AE", "email": "ada@example.com",
           "phone": None, "country": "DE", "region": None, "source": "web_form",
           "status": status, "owner_id": "ann", "score": 40, "grade": "B",
           "created_at": T0, "contacted_at": None, "activities": []}
    doc.update(extra)
    return doc


def test_the_table_covers_the_issue_flow():
    assert set(domain.TRANSITIONS) == set(domain.STATUSES)
    assert {(a, b) for a, moves in domain.TRANSITIONS.items() for b in moves} == ALLOWED


@pytest.mark.parametrize("current,target", sorted(ALLOWED))
def test_allowed_move_sets_status_and_emits_its_event(current, target):
    change = domain.change_status(lead(current), target, "no budget", T0, RULES)
    assert change.set["status"] == target
    types = [etype for etype, _ in change.events]
    assert types == EVENT_OF[target]
    for etype, data in change.events:  # each event satisfies the catalog
        new_event(etype, "L1", data, 2)


@pytest.mark.parametrize("current,target", [m for m in EVERY_MOVE if m not in ALLOWED])
def test_invalid_move_is_conflict_naming_the_allowed_moves(current, target):
    with pytest.raises(Conflict) as err:
        domain.change_status(lead(current), target, "reason", T0, RULES)
    if target == "converted" and current == "converted":
        assert err.value.extra["allowed"] == []
    else:
        assert err.value.extra["allowed"] == list(domain.TRANSITIONS[current])
    assert err.value.extra["current"] == current


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_disqualifying_needs_a_reason(reason):
    with pytest.raises(Invalid) as err:
        domain.change_status(lead("contacted"), "disqualified", reason, T0, RULES)
    assert "reason" in err.value.extra["errors"]


def test_contacted_sets_first_response_once():
    later = T0 + dt.timedelta(minutes=5)
    change = domain.change_status(lead("new"), "contacted", None, later, RULES)
    assert change.set["first_response_seconds"] == 300
    assert change.set["response_due_at"] is None
    [(etype, data)] = change.events
    assert etype == "lead.contacted" and data["contacted_at"] == later

    assert data["status"] == "contacted"

    # answered by an activity before: the status change still emits lead.contacted (with
    # status contacted), carrying the first response's time, which it does not change
    already = lead("new", contacted_at=T0 + dt.timedelta(minutes=1), first_response_seconds=60)
    change = domain.change_status(already, "contacted", None, later, RULES)
    assert "first_response_seconds" not in change.set
    [(etype, data)] = change.events
    assert (etype, data["status"], data["first_response_seconds"]) == ("lead.contacted",
                                                                     "contacted", 60)
    assert data["contacted_at"] == T0 + dt.timedelta(minutes=1)


@pytest.mark.parametrize("status", ["new", "disqualified"])
def test_an_activity_answers_a_lead_without_changing_its_status(status):
    """Regression: metrics counted the first activity on a new (or disqualified) lead as
    contacted; the event now says the lead's status stays what it was."""
    change, _ = domain.add_activity(lead(status), {"type": "call"}, T0, RULES)
    [(etype, data)] = change.events
    assert (etype, data["status"]) == ("lead.contacted", status)
    assert "status" not in change.set


@pytest.mark.parametrize("kind,responds", [("call", True), ("email", True), ("meeting", True),
                                          ("note", False)])
def test_first_response_activity(kind, responds):
    change, entry = domain.add_activity(lead(), {"type": kind}, T0 + dt.timedelta(seconds=90),
                                        RULES, actor="ann")
    assert change.log == [entry] and entry["actor"] == "ann" and not change.push
    assert change.set["activity_counts"] == {kind: 1}
    assert [e for e, _ in change.events] == (["lead.contacted"] if responds else [])
    assert change.set.get("first_response_seconds") == (90 if responds else None)
    assert "status" not in change.set  # status moves only through the state machine


def test_backdated_activity_never_gives_a_negative_response_time():
    change, _ = domain.add_activity(lead(), {"type": "call", "at": T0 - dt.timedelta(days=1)},
                                    T0 + dt.timedelta(hours=1), RULES)
    assert change.set["first_response_seconds"] == 0


@pytest.mark.parametrize("amount,currency", [(None, None), ("99.90", "EUR")])
def test_convert_carries_what_deals_needs(amount, currency):
    from decimal import Decimal
    amount = Decimal(amount) if amount else None
    change = domain.convert(lead("qualified"), amount, currency, T0, actor="ann")
    [(etype, data)] = change.events
    assert etype == "lead.converted"
    event = new_event(etype, "L1", data, 5)
    assert event["data"]["owner_id"] == "ann" and event["data"]["company"] == "AE"
    assert event["data"]["amount"] == (str(amount) if amount else None)
    assert change.set["amount"] == (str(amount) if amount else None)


@pytest.mark.parametrize("status", ["new", "contacted", "disqualified", "converted"])
def test_only_a_qualified_lead_converts(status):
    with pytest.raises(Conflict):
        domain.convert(lead(status), None, None, T0)


@pytest.mark.parametrize("before,after,freed", [
    (("qualified", "ann"), ("qualified", "ann"), None),
    (("new", "ann"), ("contacted", "ann"), None),
    (("qualified", "ann"), ("disqualified", "ann"), "ann"),
    (("qualified", "ann"), ("converted", "ann"), "ann"),
    (("contacted", "ann"), ("contacted", "bob"), "ann"),
    (("contacted", "ann"), ("contacted", None), "ann"),
    (("contacted", None), ("disqualified", None), None),
    (("disqualified", "ann"), ("disqualified", "bob"), None),
])
def test_closing_or_moving_a_lead_frees_its_owner_slot(before, after, freed):
    assert domain.released_owner(lead(before[0], owner_id=before[1]),
                                 lead(after[0], owner_id=after[1])) == freed


@pytest.mark.parametrize("on_duplicate", ["reject", None, "anything"])
def test_a_duplicate_capture_is_refused_unless_a_merge_was_asked(on_duplicate):
    with pytest.raises(domain.DuplicateLead) as exc:
        domain.merge_target(on_duplicate, domain.DuplicateLead("L1"))
    assert exc.value.extra == {"existing_id": "L1"} and isinstance(exc.value, Conflict)


def test_a_duplicate_capture_merges_into_the_existing_lead_when_asked():
    assert domain.merge_target("merge", domain.DuplicateLead("L1")) == "L1"


@pytest.mark.parametrize("extra", [
    {"response_due_at": None},
    {"response_due_at": T0 + dt.timedelta(minutes=62)},
    {"response_due_at": T0, "status": "contacted"},
    {"response_due_at": T0, "status": "disqualified"},
])
def test_response_overdue_only_for_a_new_lead_whose_clock_ran_out(extra):
    assert domain.response_overdue(lead(**extra), T0 + dt.timedelta(minutes=61)) is None


def test_an_overdue_lead_stays_with_its_owner_when_nobody_else_is_free():
    from leads.assignment import Assignment
    queued = Assignment(owner_id=None, team="dach", queue="inbox", rule="fallback")
    change = domain.response_overdue(lead(response_due_at=T0), T0, queued)
    assert [e for e, _ in change.events] == ["lead.response_overdue"]
    assert "owner_id" not in change.set and change.events[0][1]["reassigned_to"] is None


def task(**extra):
    return {**domain.new_task(lead(), T0, "call", "t1", T0), **extra}


def test_a_due_followup_of_an_open_lead_fires_its_first_event():
    change = domain.fire_followup(task(), lead("contacted"), T0)
    [(etype, data)] = change.events
    assert etype == "lead.followup_due" and data["owner_id"] == "ann"
    assert change.set == {"fired": True, "fired_at": T0}
    assert task()["version"] == 0  # so its one event is sequence 1


@pytest.mark.parametrize("owner_lead", [lead("disqualified"), lead("converted"), None])
def test_a_followup_of_a_closed_or_gone_lead_retires_quietly(owner_lead):
    change = domain.fire_followup(task(), owner_lead, T0)
    assert change.events == [] and change.set["cancelled"] is True


def test_a_fired_followup_fires_no_more():
    assert domain.fire_followup(task(fired=True), lead(), T0) is None


def test_merge_fills_only_empty_fields_and_new_keys():
    existing = lead(company=None, custom={"a": 1}, utm={}, phone=None)
    change, fields = domain.merge(existing, {
        "name": "Other", "company": "New Co", "phone": "+49301234567", "source": "event",
        "custom": {"a": 2, "b": 3}, "utm": {"source": "x"}, "email": "ada@example.com"},
        T0, RULES)
    assert fields == ["company", "custom", "phone", "utm"]
    assert change.set["company"] == "New Co" and change.set["custom"] == {"a": 1, "b": 3}
    assert change.set["phone_key"] == "+49301234567" and "name" not in change.set
    assert [e["type"] for e in change.log] == ["merge"]


def test_response_overdue_with_reassignment_emits_both_events():
    from leads.assignment import Assignment
    moved = Assignment(owner_id="bob", team="dach", queue=None, rule="dach")
    change = domain.response_overdue(lead(response_due_at=T0 + dt.timedelta(minutes=60)),
                                     T0 + dt.timedelta(minutes=61), moved)
    assert [e for e, _ in change.events] == ["lead.response_overdue", "lead.assigned"]
    assert change.events[0][1]["overdue_minutes"] == 61
    assert change.events[1][1]["previous_owner_id"] == "ann"
    assert change.events[1][1]["rule"] == "response_overdue"
    assert change.set["owner_id"] == "bob" and change.set["response_due_at"] is None
    for i, (etype, data) in enumerate(change.events):
        new_event(etype, "L1", data, 3 + i)


@pytest.mark.parametrize("raw,country,expected", [
    ("+49 30 1234567", None, "+49301234567"),
    ("030 1234567", "DE", "+49301234567"),
    ("(415) 555-2671", "US", "+14155552671"),
    ("  ", None, None),
    (None, None, None),
])
def test_phone_normalises_to_e164(raw, country, expected):
    assert domain.normalise_phone(raw, country) == expected


@pytest.mark.parametrize("raw", ["12", "030 1234567", "not a number"])
def test_bad_or_regionless_phone_is_refused(raw):
    with pytest.raises(ValueError):
        domain.normalise_phone(raw, None)


@pytest.mark.parametrize("raw, country", [
    ("12345", "CN"), ("+8612345", None), ("+1 555 0100 999", None), ("1234567", "DE")])
def test_possible_but_invalid_phone_is_refused(raw, country):
    with pytest.raises(ValueError, match="Not a valid phone number."):
        domain.normalise_phone(raw, country)


def test_identity_keys_never_collide_for_missing_values():
    assert domain.identity_keys("a", None, None) != domain.identity_keys("b", None, None)
    assert domain.identity_keys("a", "x@y.z", "+1")["email_key"] == "x@y.z"


@pytest.mark.parametrize("owner,queue,changes", [
    ("ann", None, False), ("bob", None, True), (None, "inbox", True)])
def test_manual_reassignment(owner, queue, changes):
    from leads.assignment import Assignment
    target = Assignment(owner_id=owner, team=None, queue=queue, rule="manual")
    change = domain.reassign(lead("contacted", queue=None), target, actor="boss")
    if not changes:
        assert change is None
        return
    [(etype, data)] = change.events
    assert etype == "lead.assigned" and data["previous_owner_id"] == "ann"
    assert change.set["owner_id"] == owner and change.actor == "boss"


@pytest.mark.parametrize("status", ["disqualified", "converted"])
def test_closed_lead_cannot_be_reassigned_or_get_tasks(status):
    from leads.assignment import Assignment
    with pytest.raises(Conflict):
        domain.reassign(lead(status), Assignment("bob", None, None, "manual"))
    with pytest.raises(Conflict):
        domain.new_task(lead(status), T0, None, "t1", T0)
