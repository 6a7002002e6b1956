"""Signed customer links: genuine ones open, altered, foreign-key, other-purpose and
expired ones are refused with a reason."""
import datetime as dt

import pytest

from quotes.links import LinkInvalid, Links

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=3)


def links(key_id="k2"):
    return Links({"k1": "old-secret", "k2": "new-secret"}, key_id)


def test_a_genuine_link_opens_until_it_expires():
    token = links().sign("quote", {"quote_id": "q1"}, LATER)
    assert token.startswith("k2.")
    assert links().verify("quote", token, NOW) == {"quote_id": "q1"}
    with pytest.raises(LinkInvalid) as caught:
        links().verify("quote", token, LATER)
    assert caught.value.extra["reason"] == "expired"


def test_a_link_signed_with_an_older_key_still_opens():
    token = links("k1").sign("quote", {"quote_id": "q1"}, LATER)
    assert links("k2").verify("quote", token, NOW) == {"quote_id": "q1"}


@pytest.mark.parametrize("alter", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
    lambda t: "k1" + t[2:],  # claims another key
    lambda t: "k9" + t[2:],  # unknown key
    lambda t: t.split(".", 1)[1],  # key id missing
    lambda t: "",
])
def test_an_altered_link_is_refused(alter):
    token = links().sign("quote", {"quote_id": "q1"}, LATER)
    with pytest.raises(LinkInvalid) as caught:
        links().verify("quote", alter(token), NOW)
    assert caught.value.extra["reason"] == "tampered"


def test_a_link_for_another_purpose_is_refused():
    token = links().sign("contract", {"contract_id": "c1"}, LATER)
    with pytest.raises(LinkInvalid):
        links().verify("quote", token, NOW)
