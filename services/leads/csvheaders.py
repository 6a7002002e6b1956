"""The header names a CSV of leads may give each lead field: English variants and the Chinese
that sheets exported in China carry. Headers are compared after `normalise`, so case, spaces,
'_' and '-' and full-width forms do not matter."""
import re
import unicodedata

ALIASES = {
    "name": ("name", "full name", "contact", "contact name", "姓名", "名字", "联系人",
             "客户姓名", "联系人姓名"),
    "company": ("company", "company name", "organisation", "organization", "公司", "公司名称",
                "单位", "企业", "企业名称", "客户名称"),
    "email": ("email", "e-mail", "email address", "mail", "邮箱", "电子邮件", "电子邮箱",
              "邮件", "邮箱地址"),
    "phone": ("phone", "phone number", "telephone", "tel", "mobile", "mobile phone", "cell",
              "电话", "手机", "手机号", "手机号码", "电话号码", "联系电话", "联系方式"),
    "country": ("country", "country code", "国家", "国家/地区", "国别"),
    "region": ("region", "state", "province", "地区", "省份", "省", "区域", "州"),
    "source": ("source", "lead source", "来源", "线索来源", "渠道"),
}

# Only a historical import (admins, ?history=true) reads these; in any other import such a
# column is a custom field, as it always was.
HISTORY_ALIASES = {
    "created_at": ("created at", "created", "occurred at", "创建时间", "录入时间"),
    "status": ("status", "lead status", "状态", "线索状态"),
    "contacted_at": ("contacted at", "first contacted at", "首次联系时间", "联系时间"),
    "qualified_at": ("qualified at", "合格时间", "确认时间"),
    "disqualified_at": ("disqualified at", "关闭时间", "无效时间"),
    "reason": ("reason", "disqualify reason", "原因", "关闭原因"),
    "converted_at": ("converted at", "转化时间"),
    "amount": ("amount", "deal amount", "金额", "商机金额"),
    "currency": ("currency", "币种", "货币"),
    "owner_id": ("owner", "owner id", "负责人"),
    "pipeline_id": ("pipeline", "pipeline id", "销售流程"),
}

_SEPARATORS = re.compile(r"[\s_\-]+")


def normalise(header):
    """NFKC first: Excel in Chinese locales often writes full-width letters and spaces."""
    folded = unicodedata.normalize("NFKC", header).casefold()
    return _SEPARATORS.sub(" ", folded).strip()


FIELD_BY_HEADER = {normalise(alias): field for field, names in ALIASES.items()
                   for alias in names}


HISTORY_BY_HEADER = {normalise(alias): field for field, names in HISTORY_ALIASES.items()
                     for alias in names}


def lead_field(header):
    """The lead field a header names, or None when it names none."""
    return FIELD_BY_HEADER.get(normalise(header))


def history_field(header):
    """The history field (of a historical import) a header names, or None."""
    return HISTORY_BY_HEADER.get(normalise(header))
