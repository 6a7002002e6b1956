"""Signed customer links: signing, every refusal with its kind and status, key rotation,
keys from the environment and from files, and single use inside an entity's change."""
import datetime as dt
import stat

import pytest

from kit import links
from kit.changes import Change
from kit.http import status_of

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=7)
OLD = "o" * 40
NEW = "n" * 40


def ring(keys=None, current=None):
    return links.Keyring(keys or {"k1": OLD}, current)


def test_a_signed_link_verifies_with_its_claims():
    token = ring().sign("quote.accept", "q-1", LATER, {"version": 3}, link_id="l-1")
    claims = ring().verify(token, "quote.accept", NOW)
    assert (claims.subject, claims.link_id, claims.data, claims.kid) == (
        "q-1", "l-1", {"version": 3}, "k1")
    assert claims.expires_at == LATER


def test_the_token_names_its_key_and_is_url_safe():
    token = ring().sign("csat", "t-1", LATER)
    assert token.startswith("k1.")
    assert all(c.isalnum() or c in "-_." for c in token)


def _flip(token, at):
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1:]


@pytest.mark.parametrize("mangle", [
    pytest.param(lambda t: _flip(t, len(t) - 3), id="signature"),
    pytest.param(lambda t: _flip(t, 6), id="payload"),
    pytest.param(lambda t: t.replace("k1.", "k1", 1), id="no-key-separator"),
    pytest.param(lambda t: "", id="empty"),
    pytest.param(lambda t: "k/1." + t[3:], id="bad-key-id"),
])
def test_a_tampered_link_is_refused_403(mangle):
    token = mangle(ring().sign("quote.accept", "q-1", LATER))
    with pytest.raises(links.LinkTampered) as refused:
        ring().verify(token, "quote.accept", NOW)
    assert refused.value.extra == {"kind": "tampered"}
    assert status_of(refused.value) == 403


def test_a_link_for_another_purpose_is_refused_as_tampered():
    token = ring().sign("csat", "t-1", LATER)
    with pytest.raises(links.LinkTampered):
        ring().verify(token, "quote.accept", NOW)


def test_an_expired_link_is_410():
    token = ring().sign("quote.accept", "q-1", NOW)
    with pytest.raises(links.LinkExpired) as refused:
        ring().verify(token, "quote.accept", NOW)
    assert refused.value.extra == {"kind": "expired"}
    assert status_of(refused.value) == 410


def test_expiry_is_told_only_for_a_genuine_link():
    token = _flip(ring().sign("quote.accept", "q-1", NOW), -3)
    with pytest.raises(links.LinkTampered):
        ring().verify(token, "quote.accept", NOW + dt.timedelta(days=30))


def test_rotation_keeps_links_signed_with_the_old_key():
    sent = ring({"k1": OLD}).sign("quote.accept", "q-1", LATER)
    rotated = ring({"k1": OLD, "k2": NEW}, current="k2")
    fresh = rotated.sign("quote.accept", "q-2", LATER)
    assert fresh.startswith("k2.")
    assert rotated.verify(sent, "quote.accept", NOW).subject == "q-1"
    assert rotated.verify(fresh, "quote.accept", NOW).subject == "q-2"


def test_a_link_of_a_retired_key_is_unknown_key_403():
    sent = ring({"k1": OLD}).sign("quote.accept", "q-1", LATER)
    with pytest.raises(links.LinkUnknownKey) as refused:
        ring({"k2": NEW}).verify(sent, "quote.accept", NOW)
    assert refused.value.extra == {"kind": "unknown_key"}
    assert status_of(refused.value) == 403


def test_a_key_id_pointing_at_another_key_does_not_verify():
    sent = ring({"k1": OLD}).sign("quote.accept", "q-1", LATER)
    with pytest.raises(links.LinkTampered):
        ring({"k1": OLD, "k2": NEW}).verify("k2" + sent[2:], "quote.accept", NOW)


def test_the_current_key_defaults_to_the_last_id():
    assert ring({"a": OLD, "b": NEW}).current == "b"


@pytest.mark.parametrize("keys,current,message", [
    ({}, None, "No key is configured"),
    ({"k1": "short"}, None, "shorter than 32"),
    ({"k 1": OLD}, None, "must match"),
    ({"k1": OLD}, "k9", "not configured"),
])
def test_a_bad_keyring_is_refused_at_start(keys, current, message):
    with pytest.raises(ValueError, match=message):
        links.Keyring(keys, current)


def test_naive_expiry_is_refused():
    with pytest.raises(ValueError):
        ring().sign("csat", "t", LATER.replace(tzinfo=None))


def test_keys_from_the_environment_and_files(tmp_path):
    (tmp_path / "k2.key").write_text(NEW + "\n")
    config = {"LINKS": {"keys": f"k1={OLD}", "keys_dir": str(tmp_path), "current": "k2"}}
    keyring = links.Keyring.from_config(config)
    assert keyring.keys == {"k1": OLD, "k2": NEW}
    assert keyring.current == "k2"


def test_no_key_configured_refuses_outside_local_development():
    with pytest.raises(ValueError):
        links.Keyring.from_config({"LINKS": {"keys": "", "keys_dir": ""}})


def test_local_development_generates_a_private_key_once(tmp_path):
    config = {"LINKS": {"dev_dir": str(tmp_path / "links")}}
    first = links.Keyring.from_config(config)
    again = links.Keyring.from_config(config)
    assert first.keys == again.keys and len(first.keys[first.current]) >= 32
    (path,) = (tmp_path / "links").glob("*.key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_configured_keys_win_over_local_development(tmp_path):
    config = {"LINKS": {"keys": f"k1={OLD}", "dev_dir": str(tmp_path / "links")}}
    assert links.Keyring.from_config(config).keys == {"k1": OLD}
    assert not (tmp_path / "links").exists()


@pytest.mark.parametrize("text,error", [("k1", True), ("", False), (" , ", False)])
def test_parse_keys(text, error):
    if error:
        with pytest.raises(ValueError):
            links.parse_keys(text)
    else:
        assert links.parse_keys(text) == {}


def test_single_use_is_recorded_with_the_effect_and_a_reuse_is_409():
    claims = ring().verify(ring().sign("csat", "t-1", LATER, link_id="l-1"), "csat", NOW)
    entity = {"_id": "t-1"}
    links.check_unused(entity, claims)
    change = links.mark_used(Change(set={"rating": 5}), claims)
    assert change.push == {"used_links": "l-1"}
    entity["used_links"] = ["l-1"]
    with pytest.raises(links.LinkUsed) as refused:
        links.check_unused(entity, claims)
    assert refused.value.extra == {"kind": "used"}
    assert status_of(refused.value) == 409
