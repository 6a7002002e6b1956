"""CSV import rules without I/O: how a body is decoded, how headers map to lead fields, the
per-cell bound, and what a request may do with an import recorded under its key."""
import datetime as dt
import pathlib

import pytest

from kit.errors import Conflict, Invalid
from leads import csvheaders, csvimport, imports
from tests.support.configs import shipped_config

TEXT = "name,company\n张伟,北京科技\n"


@pytest.mark.parametrize("raw,encoding", [
    (TEXT.encode("gbk"), "gb18030"),
    (TEXT.encode("gb18030"), "gb18030"),
    ((TEXT + "𠮷,䶮\n").encode("gb18030"), "gb18030"),  # beyond GBK: four-byte GB18030
    (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "utf-8"),
    (TEXT.encode("utf-8"), "utf-8"),
    (b"\xff\xfe" + TEXT.encode("utf-16-le"), "utf-16-le"),
    (b"\xfe\xff" + TEXT.encode("utf-16-be"), "utf-16-be"),
    ("\ufeff".encode("utf-32-le") + TEXT.encode("utf-32-le"), "utf-32-le"),
])
def test_detects_the_encoding_and_says_which(raw, encoding):
    text, used = csvimport.decode(raw)
    assert used == encoding and text.startswith(TEXT)


@pytest.mark.parametrize("raw,charset,encoding", [
    ("name,company\n張偉,臺北科技\n".encode("big5"), "big5", "big5"),
    (TEXT.encode("gbk"), "GBK", "gb18030"),  # read as its superset
    (TEXT.encode("gb2312"), "gb2312", "gb18030"),
    (TEXT.encode("utf-16-le"), "utf-16le", "utf-16-le"),  # no BOM: only a charset tells
    ("Müller,x\n".encode("cp1252"), "windows-1252", "cp1252"),
    (b"\xef\xbb\xbf" + TEXT.encode(), "utf-8", "utf-8"),
])
def test_an_explicit_charset_wins(raw, charset, encoding):
    text, used = csvimport.decode(raw, charset)
    assert used == encoding and not text.startswith("\ufeff")
    assert text == raw.decode(encoding).removeprefix("\ufeff")


@pytest.mark.parametrize("raw,charset,detail", [
    (b"name\n\xff\xfe\n", None, "neither UTF-8 nor GB18030"),
    (b"\x80\x80\x80\x80", None, "charset"),
    (TEXT.encode("gbk"), "utf-8", "not valid utf-8"),
    (TEXT.encode(), "no-such-charset", "Unknown charset"),
    ("name\n张伟\n".encode("utf-16-le"), None, "NUL"),
])
def test_undecodable_body_is_refused_saying_why(raw, charset, detail):
    with pytest.raises(Invalid) as err:
        csvimport.decode(raw, charset)
    assert detail in err.value.detail


@pytest.mark.parametrize("header,field", [
    ("name", "name"), ("Name", "name"), (" NAME ", "name"), ("Full Name", "name"),
    ("姓名", "name"), ("联系人", "name"),
    ("company", "company"), ("Company Name", "company"), ("公司", "company"),
    ("公司名称", "company"),
    ("email", "email"), ("E-mail", "email"), ("Email_Address", "email"), ("邮箱", "email"),
    ("电子邮件", "email"), ("ｅｍａｉｌ", "email"),
    ("phone", "phone"), ("Phone Number", "phone"), ("Mobile", "phone"), ("电话", "phone"),
    ("手机", "phone"),
    ("country", "country"), ("国家", "country"), ("国家/地区", "country"),
    ("region", "region"), ("地区", "region"), ("省份", "region"), ("Province", "region"),
    ("source", "source"), ("来源", "source"),
    ("行业", None), ("industry", None), ("utm_source", None),
])
def test_headers_name_lead_fields_in_english_and_chinese(header, field):
    assert csvheaders.lead_field(header) == field


def test_chinese_headers_map_to_fields_and_other_columns_to_custom_keys():
    text = ("姓名,公司,邮箱,电话,国家,来源,行业,预算\n"
            "张伟,北京科技,zhang@example.cn,138 0013 8000,CN,event,软件,50万\n")
    rows, column_errors = csvimport.parse(text, 10)
    assert column_errors == []
    assert rows == [(2, {"source": "event", "name": "张伟", "company": "北京科技",
                         "email": "zhang@example.cn", "phone": "138 0013 8000",
                         "country": "CN", "custom": {"行业": "软件", "预算": "50万"}})]


@pytest.mark.parametrize("header", ["a.b", "$where", "utm_x.y", "utm_$x"])
def test_a_column_whose_key_cannot_be_stored_is_reported_and_ignored(header):
    rows, column_errors = csvimport.parse(f"name,{header},industry\nA,x,retail\n", 10)
    assert rows == [(2, {"source": "import", "name": "A", "custom": {"industry": "retail"}})]
    [error] = column_errors
    assert error["line"] == 1 and error["reason"] == "column"
    assert "Column 2" in error["errors"]["_column"][0]


def test_a_second_column_for_one_field_is_reported_and_ignored():
    rows, column_errors = csvimport.parse("姓名,电话,手机\n张伟,010 1234 5678,138\n", 10)
    assert rows[0][1]["phone"] == "010 1234 5678"
    assert "repeats column 2" in column_errors[0]["errors"]["_column"][0]


@pytest.mark.parametrize("size", [101, 200_000])  # 200,000 is past the csv module's own limit
def test_an_oversized_cell_makes_its_row_invalid_not_the_file(size):
    text = f'name,notes\nA,ok\n"B\nB",{"x" * size}\nC,ok\n'
    rows, _ = csvimport.parse(text, 10, max_field_chars=100)
    assert [line for line, _ in rows] == [2, 3, 5]
    errors, valid = imports.validate_rows(rows)
    assert [line for line, _ in valid] == [2, 5]
    [error] = errors
    assert error["line"] == 3 and error["reason"] == "invalid"
    assert "At most 100 characters" in error["errors"]["custom"]["notes"][0]


def test_quoted_commas_newlines_and_blank_lines_keep_line_numbers():
    text = '\ufeff姓名,公司\n"Wang, Fang","A\nB"\n\n\n李娜,"C ""D"""\n'
    rows, _ = csvimport.parse(csvimport.decode(text.encode())[0], 10)
    assert rows == [(2, {"source": "import", "name": "Wang, Fang", "company": "A\nB"}),
                    (6, {"source": "import", "name": "李娜", "company": 'C "D"'})]


def test_the_csv_modules_field_limit_is_left_as_it_was():
    import csv
    before = csv.field_size_limit()
    csvimport.parse("name\n" + "x" * 300_000 + "\n", 10)
    assert csv.field_size_limit() == before


LIMITS = imports.Limits(lease_seconds=60)
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
FRESH = NOW - dt.timedelta(seconds=10)
STALE = NOW - dt.timedelta(seconds=61)


@pytest.mark.parametrize("recorded,outcome", [
    ({"body_hash": "h", "status": "done", "result": {}}, "replay"),
    ({"body_hash": "other", "status": "done"}, "different file"),
    ({"body_hash": "other", "status": "running", "heartbeat_at": FRESH}, "different file"),
    ({"body_hash": "other", "status": "running", "heartbeat_at": STALE}, "different file"),
    ({"body_hash": "h", "status": "running", "heartbeat_at": FRESH}, "in progress"),
    ({"body_hash": "h", "status": "running", "heartbeat_at": FRESH.replace(tzinfo=None)},
     "in progress"),
    ({"body_hash": "h", "status": "running", "heartbeat_at": STALE}, "take_over"),
    ({"status": "running"}, "take_over"),  # recorded before leases existed
])
def test_what_a_request_may_do_with_an_import_under_its_key(recorded, outcome):
    if outcome in ("replay", "take_over"):
        assert imports.claim(recorded, "k", "h", LIMITS, NOW) == outcome
    else:
        with pytest.raises(Conflict) as err:
            imports.claim(recorded, "k", "h", LIMITS, NOW)
        assert outcome in err.value.detail


def test_import_limits_default_to_the_yaml():
    path = pathlib.Path(__file__).parents[3] / "services" / "leads" / "config.yml"
    assert imports.limits(shipped_config(path)) == imports.limits({}) == imports.Limits()


def test_a_header_with_too_many_columns_is_refused_as_a_whole():
    with pytest.raises(Invalid) as err:
        csvimport.parse("name," + ",".join(f"c{i}" for i in range(100)) + "\nA\n", 10,
                        max_columns=100)
    assert err.value.extra == {"max_columns": 100}


def test_a_long_header_is_ignored_and_quoted_back_short():
    rows, column_errors = csvimport.parse("name," + "h" * 200 + "\nA,x\n", 10,
                                          max_field_chars=100)
    assert rows == [(2, {"source": "import", "name": "A"})]
    [message] = column_errors[0]["errors"]["_column"]
    assert "at most 100 characters" in message and len(message) < 150
