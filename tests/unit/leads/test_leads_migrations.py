"""The leads' migrations as pure fixes: a lead stored before search existed gets its
search keys; a lead whose keys are right is left alone."""
import pytest

from leads.migrations import MIGRATIONS, search_keys


@pytest.mark.parametrize("doc, fields", [
    ({"name": "Wei ZHANG", "company": "北京示例科技有限公司"},
     {"name_key": "wei zhang", "company_key": "北京示例科技"}),
    ({"name": "Ada", "company": None}, {"name_key": "ada", "company_key": None}),
    ({"name": "Ada", "company": "ACME, Inc.", "name_key": "ada"}, {"company_key": "acme"}),
    ({"name": "Ada", "company": "Acme", "name_key": "old rule", "company_key": "acme"},
     {"name_key": "ada"}),
    ({"name": "Ada", "company": "Acme", "name_key": "ada", "company_key": "acme"}, None),
    ({"name": "", "company": None, "name_key": None, "company_key": None}, None),
])
def test_search_keys(doc, fields):
    assert search_keys(doc) == fields


def test_each_migration_reads_what_its_fix_reads():
    (migration,) = MIGRATIONS
    assert set(migration.reads) >= {"name", "company", "name_key", "company_key"}


def test_activities_stored_in_a_lead_move_to_buckets_with_their_counts():
    from leads.migrations import activity_buckets
    from leads.store import activity_log

    migration = activity_buckets(activity_log({"ACTIVITIES": {"bucket_size": 4,
                                                             "recent": 2}}))
    old = {"_id": "l", "activities": [{"id": str(n), "type": ("call", "note")[n % 2]}
                                      for n in range(6)]}
    fields = migration.fix(old)
    assert (fields["activities_count"], fields["activities_flushed"]) == (6, 6)
    assert [a["seq"] for a in fields["activities"]] == [5, 6]
    assert fields["activity_counts"] == {"call": 3, "note": 3}
    [(collection, ops)] = migration.copies(old)
    assert collection == "lead_activities"
    assert [op._filter["_id"] for op in ops] == ["l:00000000", "l:00000001"]
    assert migration.fix({**old, **fields}) is None and migration.copies({**old, **fields}) == []
    # the guard names the count only, not the long array
    assert migration.reads == ("activities_count",)
