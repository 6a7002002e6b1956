"""Sandboxed Jinja2 templates chosen by locale."""
import pytest
import yaml

from kit.errors import NotFound
from notify.templates import TemplateFailure, Templates
from tests.conftest import ROOT

DOC = {"templates": {"t": {
    "zh-CN": {"subject": "新线索：{{ data.lead_id }}", "text": "您好 {{ recipient.name }}",
              "html": "<p>{{ data.note }}</p>", "sms": {"template_id": 7,
                                                      "params": ["{{ data.lead_id }}"]}},
    "en": {"subject": "New lead:\n{{ data.lead_id }}", "text": "Hello {{ recipient.name }}"},
}}}
CTX = {"data": {"lead_id": "L1", "note": "<b>x</b>"}, "recipient": {"name": "王芳"},
       "links": {}, "event": {"type": "lead.assigned"}}


@pytest.mark.parametrize("wanted, chosen", [("zh-CN", "zh-CN"), ("en", "en"),
                                            ("en-US", "en"), ("zh-TW", "zh-CN"),
                                            ("fr", "zh-CN"), (None, "zh-CN")])
def test_locale_choice(wanted, chosen):
    assert Templates(DOC, "zh-CN").locale_for("t", wanted) == chosen


def test_render_parts():
    out = Templates(DOC, "zh-CN").render("t", "zh-CN", CTX)
    assert out["subject"] == "新线索：L1"
    assert out["text"] == "您好 王芳"
    assert out["html"] == "<p>&lt;b&gt;x&lt;/b&gt;</p>"  # HTML parts are autoescaped
    assert out["sms"] == {"template_id": "7", "params": ["L1"]}


def test_a_subject_is_one_line():
    assert Templates(DOC, "zh-CN").render("t", "en", CTX)["subject"] == "New lead: L1"


@pytest.mark.parametrize("source", ["{{ data.missing }}", "{{ ''.__class__.__mro__ }}",
                                    "{% for %}"])
def test_bad_or_unsafe_templates_fail(source):
    templates = Templates({"templates": {"t": {"en": {"text": source}}}}, "en")
    with pytest.raises(TemplateFailure):
        templates.render("t", "en", CTX)


def test_undefined_is_false_in_a_test():
    templates = Templates({"templates": {"t": {"en": {
        "text": "{% if links.accept %}{{ links.accept }}{% else %}none{% endif %}"}}}}, "en")
    assert templates.render("t", "en", CTX)["text"] == "none"


def test_unknown_template():
    with pytest.raises(NotFound):
        Templates(DOC, "en").render("nope", "en", CTX)


def test_every_shipped_template_renders_its_sample_in_both_locales():
    doc = yaml.safe_load((ROOT / "services/notify/templates.yml").read_text())
    templates = Templates(doc, "zh-CN")
    for name in templates.names():
        assert set(doc["templates"][name]) == {"zh-CN", "en"}, name
        sample = doc["samples"][name]
        for locale in ("zh-CN", "en"):
            out = templates.render(name, locale, {
                "event": {"type": sample["type"], "id": "e1"}, "data": sample["data"],
                "recipient": {"name": "Ann"}, "links": {"accept": "http://x/a"},
                "unsubscribe_url": "http://x/u"})
            assert out["subject"] and out["text"], (name, locale)
