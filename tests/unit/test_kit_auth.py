"""Token verification and the start-up refusal (kit.auth): pure, with keys made here."""
import datetime as dt
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kit.auth import AuthMisconfigured, build_verifier, who_from_claims
from kit.devtokens import ensure_keypair, mint
from kit.errors import Unauthorized
from kit.http import problem_from_exception

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return ensure_keypair(tmp_path_factory.mktemp("keys"))


def config(**auth):
    return {"AUTH": {"mode": "production", "algorithms": ["RS256", "ES256"], **auth}}


def token(keys, **kwargs):
    return mint(keys[0].read_bytes(), kwargs.pop("sub", "ann"), kwargs.pop("roles", ["rep"]),
                kwargs.pop("team", "dach"), **kwargs)


def test_a_valid_token_gives_sub_roles_and_team(keys):
    verifier = build_verifier(config(public_key_file=str(keys[1])))
    assert who_from_claims(verifier.verify(token(keys))) == {
        "sub": "ann", "roles": ["rep"], "team": "dach"}


@pytest.mark.parametrize("case, kwargs, message", [
    ("expired", {"now": NOW - dt.timedelta(hours=9)}, "expired"),
    ("not yet valid", {"now": NOW + dt.timedelta(hours=1)}, "not yet valid"),
    ("wrong issuer", {"issuer": "someone-else"}, "issuer"),
    ("wrong audience", {"audience": "another-app"}, "audience"),
])
def test_a_token_outside_its_claims_is_refused(keys, case, kwargs, message):
    verifier = build_verifier(config(public_key_file=str(keys[1]), leeway_seconds=0))
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token(keys, **kwargs))
    assert message in caught.value.detail.lower()


def test_leeway_admits_small_clock_skew(keys):
    verifier = build_verifier(config(public_key_file=str(keys[1]), leeway_seconds=60))
    assert verifier.verify(token(keys, now=NOW + dt.timedelta(seconds=30)))["sub"] == "ann"


def test_a_token_signed_by_another_key_is_refused(keys, tmp_path):
    other = ensure_keypair(tmp_path / "other")
    verifier = build_verifier(config(public_key_file=str(keys[1])))
    with pytest.raises(Unauthorized):
        verifier.verify(mint(other[0].read_bytes(), "ann", ["admin"]))


def test_hs256_is_refused_where_only_public_keys_are_configured(keys):
    verifier = build_verifier(config(public_key_file=str(keys[1])))
    forged = jwt.encode({"sub": "ann", "roles": ["admin"], "iss": "dealflow",
                         "aud": "dealflow", "exp": NOW + dt.timedelta(hours=1)},
                        "x" * 40, algorithm="HS256")
    with pytest.raises(Unauthorized, match="algorithm"):
        verifier.verify(forged)


def test_an_unsigned_token_is_refused(keys):
    verifier = build_verifier(config(public_key_file=str(keys[1])))
    unsigned = jwt.encode({"sub": "ann", "roles": ["admin"], "iss": "dealflow",
                           "aud": "dealflow", "exp": NOW + dt.timedelta(hours=1)},
                          None, algorithm="none")
    with pytest.raises(Unauthorized, match="algorithm"):
        verifier.verify(unsigned)


def test_a_401_carries_a_bearer_challenge(keys):
    verifier = build_verifier(config(public_key_file=str(keys[1])))
    with pytest.raises(Unauthorized) as caught:
        verifier.verify("not-a-token")
    response = problem_from_exception(caught.value)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="dealflow"')
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_jwks_keys_are_chosen_by_kid(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig"}]}))
    verifier = build_verifier(config(jwks_file=str(jwks)))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    claims = {"sub": "ann", "iss": "dealflow", "aud": "dealflow",
              "exp": NOW + dt.timedelta(hours=1)}
    assert verifier.verify(jwt.encode(claims, pem, "RS256", headers={"kid": "k1"}))
    with pytest.raises(Unauthorized, match="key id"):
        verifier.verify(jwt.encode(claims, pem, "RS256", headers={"kid": "k2"}))


@pytest.mark.parametrize("case, auth", [
    ("no key file", {"public_key_file": "/nonexistent/public.pem"}),
    ("no key at all", {"public_key_file": None}),
    ("the old development secret", {"public_key_file": None, "algorithms": ["HS256"],
                                    "secret": "dev-only-secret-change-me"}),
    ("a short secret", {"public_key_file": None, "algorithms": ["HS256"],
                        "secret": "short"}),
    ("HS256 without a secret", {"public_key_file": None, "algorithms": ["HS256"]}),
])
def test_a_service_refuses_to_start_without_a_safe_key(case, auth):
    with pytest.raises(AuthMisconfigured, match="Refusing to start"):
        build_verifier(config(**auth))


def test_development_mode_starts_but_accepts_no_token_without_a_key():
    verifier = build_verifier(config(mode="development", public_key_file="/nonexistent.pem"))
    with pytest.raises(Unauthorized, match="cannot be verified"):
        verifier.verify("anything")


def test_hs256_with_a_strong_secret_where_configured():
    secret = "s" * 48
    verifier = build_verifier(config(public_key_file=None, algorithms=["HS256"],
                                     secret=secret))
    signed = jwt.encode({"sub": "svc", "iss": "dealflow", "aud": "dealflow",
                         "exp": NOW + dt.timedelta(hours=1)}, secret, algorithm="HS256")
    assert verifier.verify(signed)["sub"] == "svc"


def test_a_verified_token_is_not_verified_again_until_it_expires(keys):
    verifier = build_verifier(config(public_key_file=str(keys[1])))
    now = [dt.datetime.now(dt.UTC).timestamp()]
    verifier.clock = lambda: now[0]
    good = token(keys, ttl=dt.timedelta(minutes=5))
    claims = verifier.verify(good)
    verifier.keys = []  # a second check of the signature would now fail
    assert verifier.verify(good) == claims
    # past its expiry and the leeway the remembered answer is gone: checked again (and
    # refused, with no key left)
    now[0] = claims["exp"] + verifier.leeway + 1
    with pytest.raises(Unauthorized):
        verifier.verify(good)
    assert good not in verifier._verified


def test_a_refused_token_is_never_remembered(keys):
    verifier = build_verifier(config(public_key_file=str(keys[1])))
    forged = token(keys)[:-4] + "AAAA"
    for _ in range(2):
        with pytest.raises(Unauthorized):
            verifier.verify(forged)
    assert not verifier._verified
