"""Who notify is to the owning services: a token with the `integration` role, given (a
Secret's value or file, re-read when rotated) or, in development, signed by notify itself
with the local identity provider's key for a short while and renewed before it ends. And
notify's configuration as shipped asks the owners for every customer and link its rules
and templates use."""
import datetime as dt
import os
from pathlib import Path

import pytest

from kit.auth import build_verifier
from kit.config import load_config
from notify.lookups import FileToken, Lookups, MintedToken, StaticToken, lookup_token
from notify.notifier import read_yaml
from tests.support import tokens

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
AUTH = {"issuer": "dealflow", "audience": "dealflow"}
SERVICES = Path(__file__).resolve().parents[3] / "services"


def minted(clock, ttl=600):
    return MintedToken(str(tokens.PRIVATE), sub="system:notify", issuer="dealflow",
                       audience="dealflow", ttl_seconds=ttl, clock=clock)


def test_a_minted_token_is_an_integration_one_the_services_accept():
    token = minted(lambda: dt.datetime.now(dt.UTC)).current()
    verifier = build_verifier(tokens.auth_settings())
    claims = verifier.verify(token)
    assert (claims["sub"], claims["roles"]) == ("system:notify", ["integration"])
    assert claims["exp"] - claims["iat"] == 600


def test_a_minted_token_is_renewed_before_it_ends():
    now = [T0]
    source = minted(lambda: now[0], ttl=600)
    first = source.current()
    now[0] = T0 + dt.timedelta(seconds=399)
    assert source.current() == first
    now[0] = T0 + dt.timedelta(seconds=400)  # two thirds of its life gone
    assert source.current() != first


def test_a_token_file_is_read_again_when_it_changes(tmp_path):
    path = tmp_path / "token"
    path.write_text("first\n")
    source = FileToken(str(path))
    assert source.current() == "first"
    path.write_text("second\n")
    os.utime(path, ns=(1, 10 ** 18))
    assert source.current() == "second"
    path.unlink()
    assert source.current() is None


@pytest.mark.parametrize(("settings", "kind"), [
    ({}, type(None)),
    ({"lookup_token": "t", "lookup_token_file": "/x", "lookup_signing_key_file": "/y"},
     StaticToken),
    ({"lookup_token": "", "lookup_token_file": "/x", "lookup_signing_key_file": "/y"},
     FileToken),
    ({"lookup_token": "", "lookup_token_file": "",
      "lookup_signing_key_file": str(tokens.PRIVATE)}, MintedToken),
])
def test_the_first_configured_source_wins(settings, kind):
    assert type(lookup_token(settings, AUTH)) is kind


def test_urls_are_filled_from_the_event_and_the_owners():
    lookups = Lookups(services={"quotes": "http://quotes:8003/"}, token="t")
    assert lookups.headers == {"Authorization": "Bearer t"}
    event = {"type": "quote.sent", "subject": "Q-1", "data": {"quote_id": "Q-1"}}
    assert lookups.url("{quotes}/api/v1/quotes/{quote_id}/customer", event) == \
        "http://quotes:8003/api/v1/quotes/Q-1/customer"
    assert lookups.url("{support}/api/v1/tickets/{ticket_id}/customer", event) is None
    assert Lookups().headers == {}


def test_the_shipped_configuration_asks_for_every_customer_and_link(monkeypatch):
    for name in ("QUOTES_URL", "SUPPORT_URL"):
        monkeypatch.delenv(name, raising=False)
    notify = load_config(SERVICES / "notify" / "config.yml")["NOTIFY"]
    assert notify["services"] == {"quotes": "http://127.0.0.1:8003",
                                  "support": "http://127.0.0.1:8004"}
    rules = read_yaml(notify["rules_file"])["rules"]
    templates = read_yaml(notify["templates_file"])["templates"]
    for rule in rules:
        if "customer" in rule["recipients"]:
            assert rule["event"] in notify["customers"], rule["name"]
        used = {name for parts in templates[rule["template"]].values()
                for text in parts.values() if isinstance(text, str)
                for name in ("accept", "sign", "csat") if f"links.{name}" in text}
        assert used <= set(notify["links"].get(rule["event"], {})), rule["name"]
    assert {r["event"] for r in rules if "customer" in r["recipients"]} == \
        {"quote.sent", "contract.created", "contract.sent", "ticket.resolved"}
    # no token ships in the repository
    assert not notify["lookup_token"] and not notify["lookup_signing_key_file"]
