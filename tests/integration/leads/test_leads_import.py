"""CSV import against real FerretDB and RabbitMQ: encodings and Chinese headers, bad rows
reported by line, dedup per row, body and cell limits, and an Idempotency-Key that stores
nothing twice and never reports another request's rows as its own."""
import datetime as dt
import hashlib

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


def post_csv(client, body, key=None, content_type="text/csv", params=None):
    headers = {"Content-Type": content_type}
    if key:
        headers["Idempotency-Key"] = key
    return client.post("/api/v1/leads/import", data=body, headers=headers, params=params)


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
    ("姓名\n张伟\n".encode("utf-16-le"), "NUL"),
])
def test_unreadable_csv_is_400(leads, mongo_db, body, detail):
    resp = post_csv(leads, body)
    assert resp.status_code == 400 and detail in resp.json()["detail"]
    assert mongo_db.leads.count_documents({}) == 0


CHINESE = "姓名,公司,邮箱,电话,国家,来源,地区\n" + "".join(
    f"客户{i},公司{i},c{i}@example.cn,138 0013 80{i:02d},CN,event,广东\n" for i in range(11))


@pytest.mark.parametrize("raw,params,content_type,encoding", [
    (CHINESE.encode("gbk"), None, "text/csv", "gb18030"),
    (CHINESE.encode("gb18030"), None, "text/csv", "gb18030"),
    (b"\xff\xfe" + CHINESE.encode("utf-16-le"), None, "text/csv", "utf-16-le"),
    (b"\xfe\xff" + CHINESE.encode("utf-16-be"), None, "text/csv", "utf-16-be"),
    (b"\xef\xbb\xbf" + CHINESE.encode(), None, "text/csv", "utf-8"),
    (CHINESE.encode(), None, "text/csv", "utf-8"),
    (CHINESE.encode("utf-16-le"), {"charset": "utf-16le"}, "text/csv", "utf-16-le"),
    (CHINESE.encode("gbk"), None, "text/csv; charset=GBK", "gb18030"),
])
def test_chinese_csv_in_any_excel_encoding_imports_every_row(leads, mongo_db, raw, params,
                                                              content_type, encoding):
    resp = post_csv(leads, raw, content_type=content_type, params=params)
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["encoding"] == encoding
    assert (result["rows"], result["created"], result["errors"]) == (11, 11, [])
    lead = mongo_db.leads.find_one({"email": "c7@example.cn"})
    assert (lead["name"], lead["company"], lead["phone"], lead["country"], lead["region"],
            lead["source"]) == ("客户7", "公司7", "+8613800138007", "CN", "广东", "event")


def test_an_explicit_charset_that_does_not_fit_is_400(leads, mongo_db):
    resp = post_csv(leads, CHINESE.encode("gbk"), params={"charset": "utf-8"})
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert "not valid utf-8" in resp.json()["detail"]
    assert mongo_db.leads.count_documents({}) == 0


def test_chinese_custom_columns_become_custom_fields(leads, mongo_db):
    body = "姓名,公司,邮箱,电话,国家,来源,行业,预算\n" + "".join(
        f"客户{i},公司{i},c{i}@example.cn,,CN,event,软件,{i}0万\n" for i in range(11))
    resp = post_csv(leads, body.encode("gbk"), key="chinese-custom")
    assert resp.status_code == 200, resp.text
    assert (resp.json()["rows"], resp.json()["created"]) == (11, 11)
    lead = mongo_db.leads.find_one({"email": "c3@example.cn"})
    assert lead["custom"] == {"行业": "软件", "预算": "30万"}


def test_a_column_mongodb_cannot_store_is_reported_not_fatal(leads, mongo_db):
    body = b"name,email,a.b,$x,industry\nA,a@example.com,1,2,retail\n"
    resp = post_csv(leads, body, key="bad-columns")
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert (result["created"], result["invalid"]) == (1, 0)
    assert [(e["line"], e["reason"]) for e in result["errors"]] == [(1, "column")] * 2
    assert mongo_db.leads.find_one({"email": "a@example.com"})["custom"] == {
        "industry": "retail"}
    assert post_csv(leads, body, key="bad-columns").json() == result  # replayed as stored


@pytest.fixture
def small_leads(container_factory, make_config, api):
    from leads.service import LeadsService

    config = make_config("leads", IMPORT={"max_bytes": 2000, "max_field_chars": 50})
    container_factory(LeadsService, config).start()
    return api(config)


def test_a_body_over_the_limit_is_413_and_stores_nothing(small_leads, mongo_db):
    body = ("name\n" + "".join(f"Lead {i}\n" for i in range(400))).encode()
    assert len(body) > 2000
    resp = post_csv(small_leads, body)
    assert resp.status_code == 413
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert "2000 bytes" in resp.json()["detail"] and resp.json()["max_bytes"] == 2000
    assert mongo_db.leads.count_documents({}) == 0


def test_a_chunked_body_is_cut_off_at_the_limit(small_leads, mongo_db):
    """No Content-Length to check up front: the limit holds while the body streams in."""
    def chunks():
        yield b"name\n"
        for i in range(400):
            yield f"Lead {i}\n".encode()

    resp = post_csv(small_leads, chunks())
    assert resp.status_code == 413
    assert mongo_db.leads.count_documents({}) == 0


def test_a_multipart_upload_over_the_limit_is_413(small_leads, mongo_db):
    body = ("name\n" + "x\n" * 1500).encode()
    resp = small_leads.post("/api/v1/leads/import", files={"file": ("a.csv", body)})
    assert resp.status_code == 413
    assert mongo_db.leads.count_documents({}) == 0


def test_an_oversized_cell_is_a_per_line_error(small_leads, mongo_db):
    body = f'name,email\nA,a@example.com\n"{"B" * 60}",b@example.com\nC,c@example.com\n'
    resp = post_csv(small_leads, body.encode())
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert (result["created"], result["invalid"]) == (2, 1)
    assert result["errors"][0]["line"] == 3 and "name" in result["errors"][0]["errors"]


def _running(mongo_db, key, body, heartbeat):
    """What a first import under `key` that is still storing `body` looks like."""
    mongo_db.imports.insert_one({
        "_id": key, "body_hash": hashlib.sha256(body).hexdigest(), "status": "running",
        "attempt": "first", "started_at": heartbeat, "heartbeat_at": heartbeat})


def test_another_file_under_a_running_key_is_409_and_reports_nothing(leads, mongo_db):
    key = "running-import"
    first = csv_body()
    # the first attempt has stored its first row under the id derived from (key, line 2)
    mongo_db.leads.insert_one({
        "_id": imports.row_id(key, 2), "name": "张伟", "email": "zhang.wei@example.cn",
        "email_key": "zhang.wei@example.cn", "phone_key": "+8613800138000",
        "status": "new", "version": 2, "outbox": []})
    _running(mongo_db, key, first, dt.datetime.now(dt.UTC))

    other = b"name,email\nOther,other@example.com\n"
    resp = post_csv(leads, other, key=key)
    assert resp.status_code == 409
    assert "different file" in resp.json()["detail"]
    assert mongo_db.leads.count_documents({}) == 1
    assert mongo_db.imports.find_one({"_id": key})["attempt"] == "first"


def test_the_same_file_under_a_running_key_is_409_in_progress(leads, mongo_db):
    body = csv_body()
    _running(mongo_db, "running-same", body, dt.datetime.now(dt.UTC))
    resp = post_csv(leads, body, key="running-same")
    assert resp.status_code == 409
    assert "in progress" in resp.json()["detail"] and resp.json()["import_status"] == "running"
    assert mongo_db.leads.count_documents({}) == 0


def test_a_running_import_whose_lease_lapsed_is_taken_over(leads, mongo_db):
    body = csv_body()
    _running(mongo_db, "lapsed", body, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    resp = post_csv(leads, body, key="lapsed")
    assert resp.status_code == 200, resp.text
    assert resp.json()["created"] == 4
    recorded = mongo_db.imports.find_one({"_id": "lapsed"})
    assert recorded["status"] == "done" and recorded["attempt"] != "first"


def test_a_chunked_or_multipart_upload_under_the_limit_is_imported(leads, mongo_db):
    def chunks():
        yield CHINESE.encode("gbk")[:100]
        yield CHINESE.encode("gbk")[100:]

    chunked = post_csv(leads, chunks())
    assert chunked.status_code == 200, chunked.text
    assert (chunked.json()["created"], chunked.json()["encoding"]) == (11, "gb18030")
    upload = leads.post("/api/v1/leads/import", files={"file": (
        "b.csv", "name,email\nZ,z@example.cn\n".encode("utf-16"), "text/csv")})
    assert upload.status_code == 200, upload.text
    assert upload.json()["created"] == 1 and upload.json()["encoding"].startswith("utf-16")


def _file(tag, rows=600):
    return ("name,email\n" + "".join(
        f"{tag} {i},{tag}{i}@example.com\n" for i in range(rows))).encode()


def test_two_files_racing_under_one_key_store_only_the_winners_rows(leads, mongo_db):
    import eventlet

    pool = eventlet.GreenPool(2)
    bodies = {"a": _file("a"), "b": _file("b")}
    responses = dict(zip(bodies, pool.imap(
        lambda body: post_csv(leads, body, key="race"), bodies.values()), strict=True))

    assert sorted(r.status_code for r in responses.values()) == [200, 409], \
        [r.text for r in responses.values()]
    [winner] = [tag for tag, r in responses.items() if r.status_code == 200]
    assert responses[winner].json()["created"] == 600
    assert mongo_db.leads.count_documents({}) == 600
    assert {d["email"][0] for d in mongo_db.leads.find({}, {"email": 1})} == {winner}


def test_one_file_sent_five_times_at_once_is_stored_once(leads, mongo_db):
    import eventlet

    body = _file("s")
    responses = list(eventlet.GreenPool(5).imap(
        lambda _: post_csv(leads, body, key="same"), range(5)))

    firsts = [r for r in responses
              if r.status_code == 200 and "Idempotent-Replayed" not in r.headers]
    assert len(firsts) == 1 and firsts[0].json()["created"] == 600
    for r in responses:
        assert (r.status_code == 409 and "in progress" in r.json()["detail"]) or \
            r.json() == firsts[0].json(), r.text
    assert mongo_db.leads.count_documents({}) == 600
