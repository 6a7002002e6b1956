"""A local identity provider for development and tests: an ES256 key pair under var/auth
(`make run` creates it once) and tokens signed with it (`make token`).

    python -m kit.devtokens keys var/auth
    python -m kit.devtokens token --role manager --sub alice --team east

Deployments use their identity provider's key instead (AUTH_PUBLIC_KEY_FILE or
AUTH_JWKS_FILE); the services only ever read the public half.
"""
import argparse
import datetime as dt
import os
import sys
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ALGORITHM = "ES256"
PRIVATE, PUBLIC = "private.pem", "public.pem"


def ensure_keypair(directory):
    """(private, public) paths under `directory`, created on first use (private 0600)."""
    directory = Path(directory)
    private, public = directory / PRIVATE, directory / PUBLIC
    if private.exists() and public.exists():
        return private, public
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def mint(private_pem, sub, roles, team=None, *, issuer="dealflow", audience="dealflow",
         ttl=dt.timedelta(hours=8), now=None, kid=None, extra=None):
    now = now or dt.datetime.now(dt.UTC)
    claims = {"sub": sub, "roles": list(roles), "iss": issuer, "aud": audience,
              "iat": now, "nbf": now, "exp": now + ttl, **(extra or {})}
    if team:
        claims["team"] = team
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, private_pem, algorithm=ALGORITHM, headers=headers)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kit.devtokens")
    commands = parser.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="create the key pair (once)")
    keys.add_argument("directory", nargs="?", default="var/auth")
    token = commands.add_parser("token", help="print a signed token")
    token.add_argument("--role", action="append", required=True,
                       help="a role (admin, director, manager, rep, ...); repeat for more")
    token.add_argument("--sub", required=True)
    token.add_argument("--team")
    token.add_argument("--hours", type=float, default=8)
    token.add_argument("--keys", default="var/auth")
    token.add_argument("--issuer", default=os.environ.get("AUTH_ISSUER", "dealflow"))
    token.add_argument("--audience", default=os.environ.get("AUTH_AUDIENCE", "dealflow"))
    args = parser.parse_args(argv)
    if args.command == "keys":
        print(ensure_keypair(args.directory)[1])
        return 0
    private, _ = ensure_keypair(args.keys)
    roles = [r for value in args.role for r in value.split(",") if r]
    print(mint(private.read_bytes(), args.sub, roles, args.team or None, issuer=args.issuer,
               audience=args.audience, ttl=dt.timedelta(hours=args.hours)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
