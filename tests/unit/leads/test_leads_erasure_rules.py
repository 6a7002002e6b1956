"""Erasure rules: what is blanked, what stays, idempotence."""
import datetime as dt

from leads import erasure

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def lead(**fields):
    return {"_id": "l-1", "name": "Ada", "company": "Engines", "email": "ada@example.com",
            "phone": "+49301234567", "region": "BE", "country": "DE", "status": "new",
            "custom": {"birthday": "1815-12-10", "seats": 3},
            "activities": [{"id": "a", "type": "call", "summary": "Ada's mobile is 0151"}],
            **fields}


def test_personal_fields_are_blanked_and_the_rest_stays():
    change = erasure.erase(lead(), NOW, keep_custom=("seats",), actor="dpo")
    assert {k: change.set[k] for k in ("name", "company", "email", "phone", "region")} == {
        "name": "", "company": None, "email": None, "phone": None, "region": None}
    assert change.set["custom"] == {"seats": 3}
    assert change.set["email_key"] == "none:l-1" and change.set["phone_key"] == "none:l-1"
    assert "country" not in change.set and "status" not in change.set
    # the lead's recent activities blanked, and the erasure logged after them
    [call] = change.set["activities"]
    assert call["summary"] is None and call["type"] == "call"
    [record] = change.log
    assert (record["type"], record["actor"]) == ("erasure", "dpo")
    assert change.set["activity_counts"] == {"call": 1, "erasure": 1}
    assert change.set["erased"] == {"at": NOW, "by": "dpo"}
    assert change.events == [("lead.erased", {"lead_id": "l-1", "status": "new"})]


def test_an_activity_in_a_bucket_is_blanked_unless_it_has_no_text_left():
    entry = {"id": "a", "type": "update", "seq": 4, "summary": None,
             "changes": {"email": {"from": "ada@example.com", "to": None}}}
    assert erasure.blanked(entry) == {**entry, "changes": None}
    assert erasure.blanked({**entry, "changes": None}) is None
    assert erasure.blanked({"type": "erasure", "summary": None}) is None


def test_entries_recorded_before_the_erasure_read_blanked_whatever_a_bucket_held():
    """A relay that read the lead before its erasure may copy an entry into its bucket
    after the store blanked that bucket: readers still see it blanked."""
    before = {"type": "call", "summary": "Ada's mobile", "recorded_at": NOW}
    after = {"type": "call", "summary": "New number given", "recorded_at": NOW + HOUR}
    erased = {"erased": {"at": NOW, "by": "dpo"}}
    assert erasure.as_erased(erased, [before, after]) == [{**before, "summary": None,
                                                           "changes": None}, after]
    assert erasure.as_erased({}, [before]) == [before]


def test_every_custom_field_goes_unless_kept():
    assert erasure.erase(lead(), NOW).set["custom"] == {}


def test_erasing_an_erased_lead_changes_nothing():
    change = erasure.erase(lead(), NOW, keep_custom=("seats",), actor="dpo")
    erased = {**lead(), **change.set}
    assert erasure.erase(erased, NOW, keep_custom=("seats",), actor="dpo") is None


def test_personal_data_added_after_an_erasure_is_erased_again():
    erased = {**lead(), **erasure.erase(lead(), NOW).set}
    erased["email"] = "ada@new.example"
    assert erasure.erase(erased, NOW).set["email"] is None


def test_metrics_keeps_no_personal_field_so_lead_erased_needs_no_handler_there():
    from metrics.domain import KEEP

    personal = set(erasure.BLANKED) | {"contact", "custom", "comment", "summary"}
    assert not {f for fields in KEEP.values() for f in fields} & personal
