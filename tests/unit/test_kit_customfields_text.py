"""Custom values given as text (a CSV cell, an HTML form field): names by key or label (en
or zh-CN), booleans from words, multi-picklists from separated lists, picklists by option
label; one case per type and error."""
import pytest

from kit import customfields as CF

DEFS = {d["key"]: d for d in [
    {"key": "motto", "type": "text", "max_length": 4, "labels": {"en": "Motto", "zh-CN": "口号"}},
    {"key": "seats", "type": "number", "min": "1", "labels": {"en": "Seats", "zh-CN": "席位"}},
    {"key": "budget", "type": "money", "currency": "CNY",
     "labels": {"en": "Budget", "zh-CN": "预算"}},
    {"key": "renewal", "type": "date", "labels": {"en": "Renewal", "zh-CN": "续约日期"}},
    {"key": "tier", "type": "picklist", "labels": {"en": "Tier", "zh-CN": "等级"},
     "options": [{"key": "gold", "labels": {"en": "Gold", "zh-CN": "金牌"}},
                 {"key": "silver", "labels": {"en": "Silver", "zh-CN": "银牌"}}]},
    {"key": "regions", "type": "multi_picklist", "labels": {"en": "Regions", "zh-CN": "区域"},
     "options": [{"key": "east", "labels": {"en": "East", "zh-CN": "华东"}},
                 {"key": "south", "labels": {"en": "South", "zh-CN": "华南"}}]},
    {"key": "vip", "type": "boolean", "labels": {"en": "VIP", "zh-CN": "重要客户"}},
]}


@pytest.mark.parametrize("name, text, key, stored", [
    ("motto", "客户至上", "motto", "客户至上"),
    ("口号", " 诚信 ", "motto", "诚信"),
    ("seats", " 12 ", "seats", "12"),
    ("席位", "12.5", "seats", "12.5"),
    ("预算", "1000.5", "budget", "1000.50"),
    ("Renewal", "2025-03-01", "renewal", "2025-03-01"),
    ("等级", "金牌", "tier", "gold"),
    ("tier", "silver", "tier", "silver"),
    ("区域", "华东、华南", "regions", ["east", "south"]),
    ("regions", "east; south", "regions", ["east", "south"]),
    ("regions", "South", "regions", ["south"]),
    ("重要客户", "是", "vip", True),
    ("vip", "No", "vip", False),
    ("vip", "1", "vip", True),
])
def test_good_text_values(name, text, key, stored):
    assert CF.check_text_values(DEFS, {name: text}) == ({key: stored}, {})


@pytest.mark.parametrize("name, text, message", [
    ("口号", "一二三四五", "At most 4 characters"),
    ("席位", "很多", "Must be a number"),
    ("seats", "0", "Must not be less than 1"),
    ("预算", "一千", "decimal string"),
    ("budget", "10.001", "at most 2 decimal places"),
    ("续约日期", "2025年3月1日", "YYYY-MM-DD"),
    ("等级", "铜牌", "Must be one of: gold, silver"),
    ("区域", "华东、华北", "distinct options"),
    ("regions", "east,east", "distinct options"),
    ("重要客户", "也许", "true or false"),
])
def test_a_bad_text_value_names_the_field_as_given(name, text, message):
    values, errors = CF.check_text_values(DEFS, {name: text})
    assert list(errors) == [name] and message in errors[name][0]
    assert name not in values and DEFS.get(name, {}).get("key") not in values


def test_undefined_names_pass_and_a_field_given_twice_is_an_error():
    assert CF.check_text_values(DEFS, {"来源渠道": "展会"}) == ({"来源渠道": "展会"}, {})
    _, errors = CF.check_text_values(DEFS, {"seats": "2", "席位": "3"})
    assert "given twice" in errors["席位"][0]


def test_a_key_wins_over_another_fields_label():
    defs = {**DEFS, "gold": {"key": "gold", "type": "text", "labels": {"en": "tier",
                                                                        "zh-CN": "金"}}}
    assert CF.check_text_values(defs, {"tier": "gold"}) == ({"tier": "gold"}, {})
