"""The audit trail's client address: X-Forwarded-For only as far as trusted proxies wrote
it (kit.audit.client_address)."""
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from kit.audit import _networks, client_address


def request(peer, forwarded=None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return Request(EnvironBuilder(headers=headers,
                                  environ_base={"REMOTE_ADDR": peer}).get_environ())


@pytest.mark.parametrize("trusted, peer, forwarded, expected", [
    ([], "198.51.100.7", "203.0.113.9", "198.51.100.7"),              # no proxy trusted
    (["10.0.0.0/8"], "198.51.100.7", "203.0.113.9", "198.51.100.7"),  # peer not a proxy
    (["10.0.0.0/8"], "10.0.0.2", "203.0.113.9", "203.0.113.9"),
    (["10.0.0.0/8"], "10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.5", "203.0.113.9"),
    (["10.0.0.0/8"], "10.0.0.2", None, "10.0.0.2"),
    ("10.0.0.0/8, 192.168.1.5", "192.168.1.5", "203.0.113.9", "203.0.113.9"),
])
def test_forwarded_for_is_believed_only_from_trusted_proxies(trusted, peer, forwarded,
                                                             expected):
    assert client_address(request(peer, forwarded), _networks(trusted)) == expected
