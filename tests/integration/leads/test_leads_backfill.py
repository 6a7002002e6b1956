"""The search-key back-fill (kit.migrations, leads.migrations) on real FerretDB: leads
stored before search existed (inserted here directly, in their old shape) are found by
search once the service ran it; it runs once per database (a marker), walks the
collection in batches (by created_at and `_id`), and a run killed half way resumes after
its last batch when its lease lapses, fixing nothing twice."""
import datetime as dt

import pytest

from kit.migrations import MARKERS, Runner
from leads import domain
from leads.migrations import MIGRATIONS, search_keys
from tests.support.wait import wait_for

T0 = dt.datetime(2023, 3, 1, 9, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
OLD = [  # (name, company, email): as leads were stored before search existed
    ("张伟", "北京示例科技有限公司", "zw@example.cn"),
    ("Wei Zhang", "ACME, Inc.", "wei@acme.example"),
    ("Ada Lovelace", "Analytical Engines Ltd", "ada@engines.example"),
    ("王芳", None, "wf@example.cn"),
    ("Zhang San", "Zhangjiang Robotics", None),
    ("李娜", "上海示例有限公司", "ln@example.cn"),
    ("Grace Hopper", "Navy", "grace@navy.example"),
]


def old_lead(i, name, company, email):
    _id = f"00000000-0000-4000-8000-{i:012d}"
    return {"_id": _id, "name": name, "company": company, "email": email, "phone": None,
            "country": "CN", "region": None, "source": "import", "status": "new",
            "score": 10, "grade": "C", "owner_id": None, "team": None, "custom": {},
            "utm": None, "created_at": T0 + i // 2 * HOUR, "updated_at": T0, "version": 1,
            **domain.identity_keys(_id, email, None)}


@pytest.fixture
def old_leads(mongo_db):
    docs = [old_lead(i, *row) for i, row in enumerate(OLD)]
    # even a lead without a creation time (none should lack one) is not skipped
    for doc in docs[:2]:
        del doc["created_at"]
    mongo_db.leads.insert_many(docs)
    return docs


def start(container_factory, make_config, api, **migrations):
    from leads.service import LeadsService

    config = make_config("leads", MIGRATIONS={"batch_size": 2, "lease_seconds": 60,
                                              "retry_seconds": 0.2, **migrations})
    container = container_factory(LeadsService, config)
    container.start()
    ran = next(d for d in container.extensions if d.__class__.__name__ == "Migrations")
    assert wait_for(lambda: ran.finished, timeout=30)
    return container, api(config)


def found(client, q, by="any"):
    resp = client.get("/api/v1/leads/search", params={"q": q, "by": by})
    assert resp.status_code == 200, resp.text
    return [item["name"] for item in resp.json()["items"]]


def test_old_leads_are_found_by_search_after_the_service_ran_the_backfill(
        container_factory, make_config, api, mongo_db, old_leads):
    assert found_nothing_before(mongo_db)
    container, client = start(container_factory, make_config, api)
    assert found(client, "北京示例", "company") == ["张伟"]
    assert found(client, "acme", "company") == ["Wei Zhang"]
    assert found(client, "zhang") == ["Zhang San"]  # name and company match: once
    assert found(client, "王") == ["王芳"]
    assert found(client, "ada@engines") == ["Ada Lovelace"]
    marker = mongo_db[MARKERS].find_one({"_id": "lead_search_keys_v1"})
    assert (marker["status"], marker["fixed"]) == ("done", len(OLD))

    # once per database: a restart reads the marker and touches no lead
    container.stop()
    mongo_db.leads.update_one({"_id": old_leads[6]["_id"]}, {"$unset": {"name_key": 1}})
    start(container_factory, make_config, api)
    assert "name_key" not in mongo_db.leads.find_one({"_id": old_leads[6]["_id"]})
    assert mongo_db[MARKERS].find_one({"_id": "lead_search_keys_v1"})["fixed"] == len(OLD)


def found_nothing_before(mongo_db):
    return mongo_db.leads.count_documents({"name_key": {"$exists": True}}) == 0


class Clock:
    def __init__(self):
        self.at = T0

    def __call__(self):
        return self.at


def test_a_run_killed_half_way_resumes_after_its_last_batch_once_its_lease_lapses(
        mongo_db, old_leads):
    (backfill,) = MIGRATIONS
    seen = []

    def watched(doc):
        seen.append(doc["_id"])
        return search_keys(doc)

    migration = backfill._replace(fix=watched)
    clock = Clock()
    first = Runner(mongo_db, batch_size=3, lease_seconds=60, now=clock, owner="first")
    assert first.run(migration, max_batches=1) is False  # "killed" after one batch
    marker = mongo_db[MARKERS].find_one({"_id": migration.name})
    assert (marker["status"], marker["last_id"], marker["fixed"]) == (
        "running", [T0 + HOUR, old_leads[2]["_id"]], 3)
    # (the two without created_at came first, then the earliest one)
    assert seen == [d["_id"] for d in old_leads[:3]]

    second = Runner(mongo_db, batch_size=3, lease_seconds=60, now=clock, owner="second")
    assert second.run(migration) is False  # the first one's lease still runs
    assert len(seen) == 3

    clock.at += dt.timedelta(seconds=61)
    assert second.run(migration) is True
    assert seen == [d["_id"] for d in old_leads]  # each lead read once
    marker = mongo_db[MARKERS].find_one({"_id": migration.name})
    assert (marker["status"], marker["owner"], marker["fixed"]) == ("done", "second", len(OLD))
    assert first.run(migration) is False and second.done(migration)
    for doc in mongo_db.leads.find({}):
        assert search_keys(doc) is None


def test_a_lead_edited_meanwhile_keeps_the_edit(mongo_db, old_leads):
    (backfill,) = MIGRATIONS

    def edited_meanwhile(doc):
        fields = search_keys(doc)
        if doc["_id"] == old_leads[0]["_id"]:  # a PATCH lands between read and write
            mongo_db.leads.update_one({"_id": doc["_id"]}, {"$set": {
                "name": "张伟伟", "name_key": "张伟伟", "company_key": "北京示例科技"}})
        return fields

    migration = backfill._replace(fix=edited_meanwhile)
    assert Runner(mongo_db, batch_size=10).run(migration) is True
    assert mongo_db.leads.find_one({"_id": old_leads[0]["_id"]})["name_key"] == "张伟伟"
