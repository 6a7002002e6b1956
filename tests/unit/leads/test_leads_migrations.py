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
