"""Signed unsubscribe links: verify, refuse tampering and expiry, rotate keys."""
import pytest

from kit.errors import NotFound
from notify.links import Links

TARGET = {"r": "person:ann", "c": "email"}


def test_a_signed_link_verifies():
    links = Links("k1", "s1")
    token = links.sign(TARGET)
    assert token.startswith("k1.")
    assert links.verify(token) == TARGET


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),   # signature changed
    lambda t: "k9" + t[2:],                                          # unknown key id
    lambda t: t.split(".", 1)[0],                                    # nothing signed
    lambda t: "",
])
def test_a_tampered_link_is_no_link(mangle):
    links = Links("k1", "s1")
    with pytest.raises(NotFound):
        links.verify(mangle(links.sign(TARGET)))


def test_keys_rotate_old_links_still_verify():
    old = Links("k1", "s1").sign(TARGET)
    rotated = Links("k2", "s2", previous={"k1": "s1"})
    assert rotated.verify(old) == TARGET
    assert rotated.sign(TARGET).startswith("k2.")
    with pytest.raises(NotFound):
        Links("k2", "s2").verify(old)  # k1 retired for good


def test_an_expired_link_is_no_link():
    links = Links("k1", "s1", max_age_days=-1)
    with pytest.raises(NotFound, match="expired"):
        links.verify(links.sign(TARGET))
