"""Editing a lead and recycling it into nurture (leads.editing): pure."""
import datetime as dt

import pytest

from kit.errors import Conflict, Invalid
from kit.events import new_event
from leads import domain, editing, scoring
from leads.domain import LeadRules

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
RULES = LeadRules(scoring=scoring.parse_rules([{"name": "has_company", "field": "company",
                                                "op": "present", "points": 10}]),
                  grades={"A": 60, "B": 35, "C": 5})


def lead(status="new", **extra):
    doc = {"_id": "L1", "name": "Ada", "company": None, "email": "ada@example.com",
           "phone": None, "country": "DE", "region": None, "source": "web_form",
           "status": status, "owner_id": "ann", "score": 0, "grade": "D", "custom": {"a": 1},
           "created_at": T0, "contacted_at": None, "activities": []}
    doc.update(extra)
    return doc


def test_an_edit_sets_what_changed_records_who_and_from_what_and_rescores():
    change = editing.edit(lead(), {"company": "Acme", "email": "ada@acme.com",
                                   "custom": {"b": 2, "a": None}}, T0, RULES, "bob")
    assert change.set["company"] == "Acme" and change.set["email"] == "ada@acme.com"
    assert change.set["email_key"] == "ada@acme.com" and change.set["phone_key"] == "none:L1"
    assert change.set["custom"] == {"b": 2}
    assert change.set["score"] == 10 and change.set["grade"] == "C"
    [entry] = change.log  # the lead's activity log (kit.buckets), counted
    assert change.set["activity_counts"] == {"update": 1}
    assert entry["type"] == "update" and entry["actor"] == "bob"
    assert entry["changes"]["email"] == {"from": "ada@example.com", "to": "ada@acme.com"}
    [(etype, data)] = change.events
    assert etype == "lead.updated" and data["changed"] == ["company", "email", "custom"]
    new_event(etype, "L1", data, 3)  # the catalog accepts it
    assert editing.identity_changes(change) == {"email": "ada@acme.com"}


def test_an_edit_that_changes_nothing_is_none():
    assert editing.edit(lead(), {"name": "Ada", "custom": {"a": 1}}, T0, RULES) is None


def test_a_phone_is_read_for_the_leads_country():
    change = editing.edit(lead(), {"phone": "030 1234567"}, T0, RULES)
    assert change.set["phone"] == "+49301234567" and change.set["phone_key"] == "+49301234567"


def test_a_bad_phone_is_invalid_naming_it():
    with pytest.raises(Invalid) as err:
        editing.edit(lead(), {"phone": "12"}, T0, RULES)
    assert "phone" in err.value.extra["errors"]


@pytest.mark.parametrize("status", editing.RECYCLABLE)
def test_recycle_moves_into_nurture_with_the_reason(status):
    change = editing.recycle(lead(status, reason="spam" if status == "disqualified" else None),
                             " budget next year ", T0, "ann")
    assert change.set["status"] == "nurture" and change.set["reason"] == "budget next year"
    [(etype, data)] = change.events
    assert etype == "lead.recycled" and data["from_status"] == status
    new_event(etype, "L1", data, 5)


@pytest.mark.parametrize("status", ["converted", "nurture"])
def test_converted_or_nurtured_leads_are_not_recycled(status):
    with pytest.raises(Conflict):
        editing.recycle(lead(status), "again", T0)


def test_recycle_needs_a_reason():
    with pytest.raises(Invalid):
        editing.recycle(lead(), "  ", T0)


def test_a_lead_back_from_nurture_takes_its_owners_slot_again():
    before, after = lead("nurture"), lead("contacted")
    assert domain.reclaimed_owner(before, after) == "ann"
    assert domain.released_owner(lead("qualified"), lead("nurture")) == "ann"
