"""Tokens for tests: a key pair of the tests' own (var/test-auth, created once) whose
public half every service under test reads, and tokens signed with it."""
from pathlib import Path

from kit.devtokens import ensure_keypair, mint

ROOT = Path(__file__).resolve().parents[2]

PRIVATE, PUBLIC = ensure_keypair(ROOT / "var" / "test-auth")
PEOPLE = ROOT / "tests" / "support" / "people.yml"
# the identity existing tests act as unless they ask for another one
DEFAULT = {"sub": "ada", "roles": ("admin",), "team": "ops"}


def token(*roles, sub=None, team=None, **kwargs):
    """A token with exactly these roles (none at all when none are given)."""
    return mint(PRIVATE.read_bytes(), sub or DEFAULT["sub"], roles,
                team if team is not None or sub else DEFAULT["team"], **kwargs)


def bearer(*roles, sub=None, team=None, **kwargs):
    """Authorization headers; without roles, the default identity's (an admin)."""
    roles = roles or DEFAULT["roles"]
    return {"Authorization": f"Bearer {token(*roles, sub=sub, team=team, **kwargs)}"}


def auth_settings():
    """The AUTH and PEOPLE settings of a service under test."""
    return {"AUTH": {"mode": "production", "public_key_file": str(PUBLIC), "jwks_file": None,
                     "algorithms": ["RS256", "ES256"], "secret": None},
            "PEOPLE": {"file": str(PEOPLE)}}


def auth_environment():
    """The same for a service run as a process."""
    return {"AUTH_MODE": "production", "AUTH_PUBLIC_KEY_FILE": str(PUBLIC),
            "PEOPLE_FILE": str(PEOPLE)}
