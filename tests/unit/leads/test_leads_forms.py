"""Rules of public web forms: configuration, origins, rate-limit windows, the honeypot."""
import datetime as dt

import pytest

from kit.errors import Forbidden, NotFound
from leads import forms

NOW = dt.datetime(2026, 11, 27, 12, 0, 30, tzinfo=dt.UTC)


def config(**form):
    return {"forms": [{"key": "pk_contact_2026", "origins": ["https://WWW.Example.com/"],
                       **form}]}


def test_a_form_from_config_with_defaults():
    (form,) = forms.forms_from_config(config()).values()
    assert form.origins == frozenset({"https://www.example.com"})
    assert (form.source, form.honeypot, form.allow_no_origin) == ("web_form", "website", False)
    assert form.per_address == forms.Window(10, 600)
    assert form.actor == "customer:form:pk_contact_2026"


@pytest.mark.parametrize("entry,message", [
    ({"key": "short"}, "must match"),
    ({"key": "pk contact 2026"}, "must match"),
    ({"per_address": {"limit": 0, "window_seconds": 60}}, "limit >= 1"),
    ({"per_form": {"limit": 5, "window_seconds": 0}}, "window_seconds >= 1"),
])
def test_a_malformed_form_stops_start_up(entry, message):
    with pytest.raises(ValueError, match=message):
        forms.forms_from_config(config(**entry))


def test_an_unknown_form_is_not_found():
    with pytest.raises(NotFound):
        forms.form_of({}, "pk_nothing_here")


@pytest.mark.parametrize("origin,allowed", [
    ("https://www.example.com", True),
    ("HTTPS://WWW.EXAMPLE.COM/", True),
    ("https://www.example.com:8443", False),
    ("http://www.example.com", False),
    ("https://example.com", False),
    ("null", False),
    (None, False),
    ("", False),
])
def test_origins(origin, allowed):
    (form,) = forms.forms_from_config(config()).values()
    if allowed:
        assert forms.check_origin(form, origin) == "https://www.example.com"
    else:
        with pytest.raises(Forbidden):
            forms.check_origin(form, origin)


def test_no_origin_where_the_form_allows_servers():
    (form,) = forms.forms_from_config(config(allow_no_origin=True)).values()
    assert forms.check_origin(form, None) is None
    assert forms.cors_headers(None) == {}


def test_a_window_is_fixed_and_its_id_sorts_by_its_end():
    window = forms.Window(5, 60)
    bucket_id, end = forms.bucket("address", "pk:203.0.113.9", window, NOW)
    assert end == dt.datetime(2026, 11, 27, 12, 1, tzinfo=dt.UTC)
    assert bucket_id.startswith(f"{int(end.timestamp()):012d}:60:")
    assert "203.0.113.9" not in bucket_id
    later, _ = forms.bucket("address", "pk:203.0.113.9", window, end)
    assert later > bucket_id
    assert forms.bucket("address", "pk:203.0.113.9", window, NOW)[0] == bucket_id
    assert forms.retry_after(end, NOW) == 30
    assert forms.retry_after(end, end) == 1


@pytest.mark.parametrize("value,bot", [("x", True), (" spam ", True), ("", False),
                                       ("  ", False), (None, False)])
def test_honeypot(value, bot):
    (form,) = forms.forms_from_config(config()).values()
    data = {"name": "x"} if value is None else {"name": "x", "website": value}
    assert forms.is_bot(data, form) is bot
    assert "website" not in data
