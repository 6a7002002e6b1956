"""CSV import against real FerretDB and RabbitMQ: BOM and Chinese names, bad rows reported by
line, dedup per row, and a repeated Idempotency-Key that stores nothing twice."""
import pytest

from leads import imports
from tests.support.amqp import Subscriber

HEADER = "name,email,phone,country,company,source,utm_campaign,industry\n"
ROWS = [
    "张伟,zhang.wei@example.cn,+86 138 0013 8000,CN,北京科技,event,spring,software\n",  # 2
    "Bad Email,not-an-email,,DE,,,,\n",                                                   # 3
    "Bad Country,bc@example.com,,XX,,,,\n",                                               # 4
    ",missing-name@example.com,,DE,,,,\n",                                                # 5
    "王芳,ZHANG.WEI@example.cn,,CN,,,,\n",                                   # 6 dup of 2
    "Existing,existing@example.com,,DE,,,,\n",                                            # 7 dup
    '"Multi, Line",ml@example.com,,US,"A\nB Corp",referral,,\n',                          # 8
    "Last,last@example.com,030 1234567,DE,,ads,,\n",                                      # 10
]


def csv_body(bom=True):
    text = HEADER + "".join(ROWS)
    return ("\ufeff" if bom else "").encode() + text.encode("utf-8")


@pytest.fixture
def leads(container_factory, make_config, api, rabbit_config):
    from leads.service import LeadsService

    config = make_config("leads", SLA={"response_minutes": 0})
    container_factory(LeadsService, config).start()
    return api(config)


def post_csv(client, body, key=None):
    headers = {"Content-Type": "text/csv"}
    if key:
        headers["Idempotency-Key"] = key
    return client.post("/api/v1/leads/import", data=body, headers=headers)


@pytest.mark.parametrize("bom", [True, False])
def test_import_stores_valid_rows_and_reports_each_bad_row_by_line(leads, mongo_db, bom):
    existing = leads.post("/api/v1/leads", json={"name": "E", "email": "existing@example.com"})
    assert existing.status_code == 201

    resp = post_csv(leads, csv_body(bom))
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert (result["rows"], result["created"], result["invalid"], result["duplicates"]) == \
        (8, 3, 3, 2)
    by_line = {e["line"]: e for e in result["errors"]}
    assert sorted(by_line) == [3, 4, 5, 6, 7]
    assert "email" in by_line[3]["errors"]
    assert "country" in by_line[4]["errors"]
    assert "name" in by_line[5]["errors"]
    assert by_line[6]["duplicate_of_line"] == 2
    assert by_line[7]["existing_id"] == existing.json()["id"]

    zhang = mongo_db.leads.find_one({"email": "zhang.wei@example.cn"})
    assert zhang["name"] == "张伟" and zhang["company"] == "北京科技"
    assert zhang["phone"] == "+8613800138000" and zhang["source"] == "event"
    assert zhang["utm"] == {"campaign": "spring"} and zhang["custom"] == {"industry": "software"}
    multi = mongo_db.leads.find_one({"email": "ml@example.com"})
    assert multi["company"] == "A\nB Corp" and multi["source"] == "referral"
    assert mongo_db.leads.find_one({"email": "last@example.com"})["phone"] == "+49301234567"
    assert mongo_db.leads.count_documents({}) == 4


def test_repeated_idempotency_key_stores_nothing_twice(leads, mongo_db, rabbit_config):
    events = Subscriber(rabbit_config["AMQP_URI"], "leads", "lead.created")
    first = post_csv(leads, csv_body(), key="import-42")
    assert first.status_code == 200 and first.json()["created"] == 4
    again = post_csv(leads, csv_body(), key="import-42")
    assert again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert mongo_db.leads.count_documents({}) == 4
    created = events.drain(expect=4, timeout=10) + events.drain(timeout=1)
    assert len(created) == 4

    other = post_csv(leads, csv_body(bom=False) + b"Extra,extra@example.com,,,,,,\n",
                     key="import-42")
    assert other.status_code == 409
    assert mongo_db.leads.count_documents({}) == 4
    events.close()


def test_retry_after_a_crash_half_way_finds_the_rows_it_stored(leads, mongo_db):
    """An attempt that stored some rows and died before recording its result: the retry
    with the same key derives the same row ids and stores the rest only."""
    key = "crashed-import"
    body = csv_body()
    # what the crashed attempt left behind: the first row, stored under its derived id
    leftover = imports.row_id(key, 2)
    mongo_db.leads.insert_one({
        "_id": leftover, "name": "张伟", "email": "zhang.wei@example.cn",
        "email_key": "zhang.wei@example.cn", "phone_key": "+8613800138000",
        "status": "new", "version": 2, "outbox": []})
    mongo_db.imports.insert_one({"_id": key, "status": "running"})

    resp = post_csv(leads, body, key=key)
    assert resp.status_code == 200, resp.text
    assert resp.json()["created"] == 4 and resp.json()["duplicates"] == 1  # line 6
    assert resp.json()["invalid"] == 3
    assert [d["_id"] for d in mongo_db.leads.find({"email": "zhang.wei@example.cn"})] == \
        [leftover]
    assert mongo_db.leads.count_documents({}) == 4


def test_more_rows_than_allowed_is_400_and_stores_nothing(container_factory, make_config, api,
                                                          mongo_db):
    from leads.service import LeadsService

    config = make_config("leads", IMPORT={"max_rows": 3})
    container_factory(LeadsService, config).start()
    resp = post_csv(api(config), csv_body())
    assert resp.status_code == 400 and resp.json()["max_rows"] == 3
    assert mongo_db.leads.count_documents({}) == 0


@pytest.mark.parametrize("body,detail", [
    (b"", "empty"),
    (b"email\nx@example.com\n", "name"),
    (b"name\n\xff\xfe\n", "UTF-8"),
])
def test_unreadable_csv_is_400(leads, mongo_db, body, detail):
    resp = post_csv(leads, body)
    assert resp.status_code == 400 and detail in resp.json()["detail"]
    assert mongo_db.leads.count_documents({}) == 0
