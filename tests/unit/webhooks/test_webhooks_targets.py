"""Webhook targets: only allow-listed hosts over https, at public addresses (outside local
development)."""
import pytest

from webhooks.sender import resolve
from webhooks.targets import TargetRefused, check_target

ALLOW = ["hooks.example.com", "*.erp.example.com"]
PUBLIC = ["93.184.216.34"]


@pytest.mark.parametrize("url, addresses", [
    ("https://hooks.example.com/dealflow", PUBLIC),
    ("https://eu.erp.example.com:8443/in", PUBLIC),
    ("https://HOOKS.example.com./x", PUBLIC),
    ("https://hooks.example.com/x", ["2606:2800:220:1:248:1893:25c8:1946"]),
])
def test_allowed_targets(url, addresses):
    check_target(url, addresses, allow=ALLOW)


@pytest.mark.parametrize("url, addresses, reason", [
    ("http://hooks.example.com/x", PUBLIC, "https"),
    ("ftp://hooks.example.com/x", PUBLIC, "https"),
    ("https://user:pw@hooks.example.com/x", PUBLIC, "user name"),
    ("https:///x", PUBLIC, "names a host"),
    ("https://evil.example.net/x", PUBLIC, "allow-list"),
    ("https://erp.example.com/x", PUBLIC, "allow-list"),
    ("https://hooks.example.com.evil.net/x", PUBLIC, "allow-list"),
    ("https://hooks.example.com/x", [], "does not resolve"),
    ("https://hooks.example.com/x", ["127.0.0.1"], "not a public address"),
    ("https://hooks.example.com/x", ["10.1.2.3"], "not a public address"),
    ("https://hooks.example.com/x", ["192.168.1.5"], "not a public address"),
    ("https://hooks.example.com/x", ["172.16.0.1"], "not a public address"),
    ("https://hooks.example.com/x", ["169.254.169.254"], "not a public address"),
    ("https://hooks.example.com/x", ["100.64.0.1"], "not a public address"),
    ("https://hooks.example.com/x", ["::1"], "not a public address"),
    ("https://hooks.example.com/x", ["fd00::1"], "not a public address"),
    ("https://hooks.example.com/x", ["fe80::1"], "not a public address"),
    ("https://hooks.example.com/x", ["::ffff:127.0.0.1"], "not a public address"),
    ("https://hooks.example.com/x", ["224.0.0.1"], "not a public address"),
    ("https://hooks.example.com/x", ["93.184.216.34", "127.0.0.1"], "not a public address"),
])
def test_refused_targets(url, addresses, reason):
    with pytest.raises(TargetRefused, match=reason):
        check_target(url, addresses, allow=ALLOW)


def test_local_development_allows_http_and_loopback():
    check_target("http://localhost:9000/hook", ["127.0.0.1"], allow=["localhost"],
                 development=True)


def test_local_development_still_needs_the_allow_list():
    with pytest.raises(TargetRefused, match="allow-list"):
        check_target("http://other:9000/hook", ["127.0.0.1"], allow=["localhost"],
                     development=True)


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/x", "http://127.0.0.1:abc/x",
                                 "http://[::1/x"])
def test_a_url_urllib_refuses_resolves_to_nothing(url):
    # stored before the schema checked ports, it must not stop the sender's round
    assert resolve(url) == []
