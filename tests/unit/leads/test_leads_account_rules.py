"""Accounts and contacts (leads.accounts): matching, the duplicate rule, the lead's side."""
import datetime as dt

import pytest

from kit.changes import Change
from kit.errors import Conflict
from kit.events import new_event
from leads import accounts

T0 = dt.datetime(2024, 5, 1, 9, 0, tzinfo=dt.UTC)
FREE = frozenset({"gmail.com", "qq.com"})


@pytest.mark.parametrize("email,expected", [
    ("ada@Engines.Example", "engines.example"), ("ada@gmail.com", None), ("x", None),
    (None, None)])
def test_email_domain_skips_free_mail(email, expected):
    assert accounts.email_domain(email, FREE) == expected


def acct(_id, at):
    return {"_id": _id, "created_at": T0 + dt.timedelta(days=at)}


def test_a_known_persons_account_wins_then_the_older_of_two_duplicates():
    old, new = acct("b", 0), acct("a", 1)
    assert accounts.choose(new, old, None) is new
    assert accounts.choose(None, new, old) is old
    assert accounts.choose(None, None, new) is new
    assert accounts.choose(None, None, None) is None


def test_one_company_gets_one_derived_account_id():
    lead = {"_id": "L1", "company": "ACME, Inc.", "email": "a@gmail.com", "name": "A"}
    other = {"_id": "L2", "company": "Acme", "email": "b@qq.com", "name": "B"}
    assert accounts.account_for_lead(lead, FREE)["id"] == \
        accounts.account_for_lead(other, FREE)["id"]


def test_conversion_names_account_and_contact_and_frees_the_leads_keys():
    change = Change(set={"status": "converted"}, events=[("lead.converted", {"lead_id": "L1"})])
    accounts.converted(change, {"_id": "L1"}, "A1", "C1")
    assert change.set["email_key"] == "none:L1" and change.set["phone_key"] == "none:L1"
    assert change.events[0][1] == {"lead_id": "L1", "account_id": "A1", "contact_id": "C1"}


def test_new_records_emit_catalog_events():
    doc, events = accounts.new_account("A1", {"name": "Acme GmbH", "lead_id": "L1"}, T0)
    assert doc["company_key"] == "acme" and doc["domain_key"] == "none:A1"
    contact, more = accounts.new_contact("C1", "A1", {"name": "Wei", "email": "w@a.cn"}, T0)
    assert contact["email_key"] == "w@a.cn" and contact["phone_key"] == "none:C1"
    for etype, data in events + more:
        new_event(etype, "x", data, 1)


def test_merge_refuses_itself_and_a_merged_account():
    a, b = {"_id": "a"}, {"_id": "b", "merged_into": "c"}
    with pytest.raises(Conflict):
        accounts.merge(a, a, T0)
    with pytest.raises(Conflict):
        accounts.merge(a, b, T0)
    assert accounts.merge(a, {"_id": "d"}, T0).set["merged_into"] == "d"


def test_linking_twice_changes_nothing():
    contact = {"lead_ids": ["L1"]}
    assert accounts.link_contact(contact, "L1", T0) is None
    # the account's log holds the conversion (the store's O(1) look-up): nothing to note
    assert accounts.link_lead({"_id": "A1"}, "L1", "C1", T0, linked=True) is None
    change = accounts.link_lead({"_id": "A1"}, "L1", "C1", T0)
    [entry] = change.log  # a log entry, numbered by the write (kit.buckets), not a push
    assert (entry["type"], entry["lead_id"], change.push) == ("conversion", "L1", {})
    assert accounts.conversion_key(entry) == "L1"
    assert accounts.conversion_key({**entry, "type": "merged"}) is None


def test_erasure_blanks_the_contact_once():
    contact, _ = accounts.new_contact("C1", "A1", {"name": "Wei", "email": "w@a.cn",
                                                   "phone": "+8613800138000"}, T0)
    change = accounts.erase_contact(contact, T0, "dpo")
    assert (change.set["name"], change.set["email"], change.set["phone"]) == ("", None, None)
    assert change.set["email_key"] == "none:C1" and change.set["erased"]["by"] == "dpo"
    assert accounts.erase_contact({**contact, **change.set}, T0) is None
