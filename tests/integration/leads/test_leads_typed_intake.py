"""Typed custom fields where leads come in as text (real FerretDB and RabbitMQ): a CSV
import (UTF-8 and GBK, headers by key or Chinese label) reports a bad value as that row's
error naming the column and stores the other rows; the public web form (JSON or
form-encoded) answers a bad value with a 400 problem+json naming the field and writes
nothing."""
import pytest

from tests.integration.leads.test_leads_capture import SITE, URL, forms
from tests.integration.leads.test_leads_record_fields import FIELDS
from tests.support.wait import wait_for

GOOD_ROW = {"seats": "12", "budget": "1000.50", "renewal": "2025-03-01", "tier": "gold",
            "regions": ["east", "south"], "vip": True, "motto": "客户至上"}


@pytest.fixture
def intake(container_factory, make_config, api):
    """(admin client, public client) of a leads service with the lead fields defined."""
    from leads.service import LeadsService

    config = make_config("leads", CAPTURE=forms(), SLA={"response_minutes": 0})
    container_factory(LeadsService, config).start()
    admin = api(config)
    for definition in FIELDS:
        resp = admin.post("/api/v1/leads/custom-fields", json=definition)
        assert resp.status_code == 201, resp.text
    return admin, api(config, auth={})


def post_csv(client, text, encoding="utf-8"):
    return client.post("/api/v1/leads/import", data=text.encode(encoding),
                       headers={"Content-Type": "text/csv"})


def stored_custom(mongo_db):
    return {d["name"]: d.get("custom") for d in mongo_db.leads.find({}, {"name": 1, "custom": 1})}


# --- CSV import -------------------------------------------------------------------------------

# the Chinese labels as headers (as a team's spreadsheet has them), Chinese option labels
CHINESE_HEADER = "姓名,邮箱,席位,预算,续约日期,等级,覆盖区域,重要客户,口号\n"
CHINESE_ROWS = [
    "张伟,zw@example.cn,12,1000.5,2025-03-01,金牌,华东、华南,是,客户至上\n",   # 2 good
    "王芳,wf@example.cn,很多,,,,,,\n",                                            # 3 seats
    "李娜,ln@example.cn,,一千,,,,,\n",                                            # 4 budget
    "刘洋,ly@example.cn,,,2025年3月1日,,,,\n",                                    # 5 date
    "陈静,cj@example.cn,,,,铜牌,,,\n",                                            # 6 tier
    "杨磊,yl@example.cn,,,,,华北,,\n",                                            # 7 regions
    "赵敏,zm@example.cn,,,,,,也许,\n",                                            # 8 vip
    "黄勇,hy@example.cn,,,,,,,一二三四五六七\n",                                  # 9 motto
    "周杰,zj@example.cn,3,,,银牌,,否,\n",                                         # 10 good
]
ROW_ERRORS = {3: "席位", 4: "预算", 5: "续约日期", 6: "等级", 7: "覆盖区域", 8: "重要客户",
              9: "口号"}


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_a_bad_value_in_a_csv_row_is_that_rows_error_naming_the_column(intake, mongo_db,
                                                                      encoding):
    admin, _ = intake
    resp = post_csv(admin, CHINESE_HEADER + "".join(CHINESE_ROWS), encoding)
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["encoding"] == ("utf-8" if encoding == "utf-8" else "gb18030")
    assert (result["rows"], result["created"], result["invalid"]) == (9, 2, 7)
    got = {e["line"]: e["errors"]["custom"] for e in result["errors"]}
    assert {line: list(errors) for line, errors in got.items()} == {
        line: [column] for line, column in ROW_ERRORS.items()}
    assert stored_custom(mongo_db) == {
        "张伟": GOOD_ROW,
        "周杰": {"seats": "3", "tier": "silver", "vip": False},
    }


@pytest.mark.parametrize("column, cell", [
    ("seats", "0"), ("budget", "10.001"), ("renewal", "20250301"), ("tier", "bronze"),
    ("regions", "east;east"), ("vip", "maybe"), ("motto", "toolong!"),
])
def test_each_type_refuses_its_bad_cell_by_key_header(intake, mongo_db, column, cell):
    admin, _ = intake
    resp = post_csv(admin, f"name,email,{column}\nAda,ada@example.com,{cell}\n")
    assert resp.status_code == 200, resp.text
    (error,) = resp.json()["errors"]
    assert error["line"] == 2 and list(error["errors"]["custom"]) == [column]
    assert mongo_db.leads.count_documents({}) == 0


# --- the public web form ----------------------------------------------------------------------

def post_form(client, **kwargs):
    return client.post(URL, headers={"Origin": SITE}, **kwargs)


@pytest.mark.parametrize("custom, field", [
    ({"seats": "many"}, "seats"),
    ({"seats": 0}, "seats"),
    ({"budget": "一千"}, "budget"),
    ({"renewal": "2025/03/01"}, "renewal"),
    ({"tier": "铜牌"}, "tier"),
    ({"regions": ["north"]}, "regions"),
    ({"vip": "也许"}, "vip"),
    ({"口号": "一二三四五六七"}, "口号"),
])
def test_a_bad_form_value_is_a_400_naming_the_field_and_writes_nothing(intake, mongo_db,
                                                                       custom, field):
    _, public = intake
    resp = post_form(public, json={"name": "张伟", "email": "zw@example.cn", "custom": custom})
    assert resp.status_code == 400, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert list(resp.json()["errors"]["custom"]) == [field]
    assert resp.headers["Access-Control-Allow-Origin"] == SITE  # the page may show it
    assert mongo_db.leads.count_documents({}) == 0


def test_a_form_encoded_post_with_chinese_labels_is_typed(intake, mongo_db):
    _, public = intake
    body = {"name": "张伟", "email": "zw@example.cn", "custom_席位": "12", "custom_预算": "1000.5",
            "custom_续约日期": "2025-03-01", "custom_等级": "金牌", "custom_覆盖区域": "华东、华南",
            "custom_重要客户": "是", "custom_口号": "客户至上"}
    resp = post_form(public, data=body)
    assert resp.status_code == 202, resp.text
    assert stored_custom(mongo_db) == {"张伟": GOOD_ROW}


def test_a_form_encoded_bad_value_is_refused_by_its_label(intake, mongo_db):
    _, public = intake
    resp = post_form(public, data={"name": "王芳", "email": "wf@example.cn",
                                   "custom_重要客户": "也许"})
    assert resp.status_code == 400
    assert "true or false" in resp.json()["errors"]["custom"]["重要客户"][0]
    assert mongo_db.leads.count_documents({}) == 0


def test_a_repeat_with_a_bad_value_changes_nothing_on_the_known_lead(intake, mongo_db):
    _, public = intake
    assert post_form(public, json={"name": "张伟", "email": "zw@example.cn",
                                   "custom": {"seats": "2"}}).status_code == 202
    # the relay empties the new lead's outbox after the answer: compare with it emptied
    assert wait_for(lambda: (mongo_db.leads.find_one({}) or {}).get("outbox") == [])
    before = mongo_db.leads.find_one({})
    resp = post_form(public, json={"name": "张伟", "email": "zw@example.cn",
                                   "custom": {"seats": "many"}})
    assert resp.status_code == 400
    assert mongo_db.leads.find_one({}) == before
