"""Who is calling: a JWT bearer token verified with PyJWT, on every route but the public ones.

Tokens are signed by an identity provider with RS256 or ES256; every service reads the
public key (`AUTH.public_key_file`, PEM) or a JWKS document (`AUTH.jwks_file`, keys chosen by
`kid`). HS256 is accepted only where `AUTH.algorithms` names it and `AUTH.secret` is set.
Issuer, audience, expiry and not-before are checked, with `AUTH.leeway_seconds` of clock
skew. A service refuses to start without a usable key, or with a known development secret,
unless `AUTH.mode` is `development` (a laptop, never a deployment).

The HTTP entrypoint (kit.http) resolves the caller once per request and keeps it on the
request; `caller(request, config)` returns it. A caller is {"sub", "roles", "team"}.
"""
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from nameko.extensions import SharedExtension

from kit import people
from kit.config import setting
from kit.errors import Forbidden, Unauthorized

log = logging.getLogger(__name__)

DEVELOPMENT = "development"
# secrets that have been in this repository or in examples: anyone can mint with them
KNOWN_DEVELOPMENT_SECRETS = frozenset({
    "dev-only-secret-change-me", "secret", "changeme", "change-me", "dev", "development",
    "test", "dealflow", "test-secret", "your-256-bit-secret"})
MIN_SECRET_BYTES = 32
ASYMMETRIC = {rsa.RSAPublicKey: ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
              ec.EllipticCurvePublicKey: ("ES256", "ES384", "ES512")}


class AuthMisconfigured(Exception):
    """The service must not start: no key to verify tokens with, or a guessable one."""


def _bearer_challenge(error=None, description=None, realm="dealflow"):
    parts = [f'realm="{realm}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append('error_description="{}"'.format(description.replace('"', "'")))
    return "Bearer " + ", ".join(parts)


def unauthorized(detail, error="invalid_token", realm="dealflow"):
    """401 with the challenge RFC 6750 asks for (no error code when no token was sent)."""
    return Unauthorized(detail, headers={"WWW-Authenticate": _bearer_challenge(
        error, detail if error else None, realm)})


@dataclass
class Verifier:
    """The keys and claims a token must match; built once per container."""

    issuer: str
    audience: str
    leeway: float
    realm: str = "dealflow"
    keys: list = field(default_factory=list)   # [(key, algorithms)] without a kid
    jwks: dict = field(default_factory=dict)   # kid -> (key, algorithms)
    problem: str | None = None                 # why no token can pass (development only)
    # A client sends one token with every request until it expires, and checking its
    # signature (ES256, RS256) costs more than the rest of a request's authentication:
    # a token verified once is good until its expiry (plus leeway), when the check
    # would start refusing it. Nothing else about a token changes with time.
    cache_size: int = 4096
    clock: object = time.time
    _verified: OrderedDict = field(default_factory=OrderedDict, repr=False)

    def verify(self, token):
        """The token's claims, or Unauthorized (401) saying why not."""
        hit = self._verified.get(token)
        if hit is not None:
            claims, until = hit
            if self.clock() < until:
                return dict(claims)
            del self._verified[token]
        claims = self._verify(token)
        self._verified[token] = (dict(claims), float(claims["exp"]) + self.leeway)
        if len(self._verified) > self.cache_size:
            self._verified.popitem(last=False)
        return claims

    def _verify(self, token):
        if self.problem:
            raise unauthorized(f"Tokens cannot be verified here: {self.problem}.",
                               realm=self.realm)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise unauthorized(f"Invalid token: {exc}.", realm=self.realm) from None
        candidates = self.keys
        if self.jwks:
            kid = header.get("kid")
            if kid not in self.jwks:
                raise unauthorized("Invalid token: unknown key id (kid).", realm=self.realm)
            candidates = [self.jwks[kid]]
        alg = header.get("alg")
        usable = [(key, algs) for key, algs in candidates if alg in algs]
        if not usable:
            raise unauthorized(f"Invalid token: algorithm {alg!r} is not accepted.",
                               realm=self.realm)
        key, algorithms = usable[0]
        try:
            return jwt.decode(token, key, algorithms=list(algorithms), audience=self.audience,
                              issuer=self.issuer, leeway=self.leeway,
                              options={"require": ["sub", "exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise unauthorized("The token has expired.", realm=self.realm) from None
        except jwt.PyJWTError as exc:
            raise unauthorized(f"Invalid token: {exc}.", realm=self.realm) from None


def _read(path):
    with open(path, "rb") as fh:
        return fh.read()


def _asymmetric(key, allowed):
    for kind, algorithms in ASYMMETRIC.items():
        if isinstance(key, kind):
            return tuple(a for a in algorithms if a in allowed)
    return ()


def build_verifier(config):
    """A Verifier from AUTH settings, or AuthMisconfigured when a deployment would accept
    forged tokens or none at all (in development mode that becomes a logged warning)."""
    development = str(setting(config, "AUTH.mode", "production")).lower() == DEVELOPMENT
    allowed = tuple(setting(config, "AUTH.algorithms", ["RS256", "ES256"]) or ())
    verifier = Verifier(issuer=str(setting(config, "AUTH.issuer", "dealflow")),
                        audience=str(setting(config, "AUTH.audience", "dealflow")),
                        leeway=float(setting(config, "AUTH.leeway_seconds", 30)),
                        realm=str(setting(config, "AUTH.realm", "dealflow")))
    problems = []
    jwks_file = setting(config, "AUTH.jwks_file")
    key_file = setting(config, "AUTH.public_key_file")
    try:
        if jwks_file:
            for jwk in jwt.PyJWKSet.from_dict(json.loads(_read(jwks_file))).keys:
                algorithms = _asymmetric(jwk.key, allowed)
                if jwk.key_id and algorithms:
                    verifier.jwks[jwk.key_id] = (jwk.key, algorithms)
            if not verifier.jwks:
                problems.append(f"the JWKS {jwks_file} has no key with a kid for "
                                f"{', '.join(allowed)}")
        elif key_file:
            key = load_pem_public_key(_read(key_file))
            algorithms = _asymmetric(key, allowed)
            if not algorithms:
                problems.append(f"the key in {key_file} suits none of {', '.join(allowed)}")
            else:
                verifier.keys.append((key, algorithms))
    except FileNotFoundError as exc:
        problems.append(f"no key file {exc.filename} (AUTH.public_key_file / AUTH.jwks_file; "
                        "`make run` creates a local key pair under var/auth)")
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        problems.append(f"the key could not be read: {exc}")
    if "HS256" in allowed:
        secret = setting(config, "AUTH.secret") or ""
        secret_file = setting(config, "AUTH.secret_file")
        if secret_file and not secret:
            secret = _read(secret_file).decode().strip()
        if not secret:
            problems.append("HS256 is accepted but AUTH.secret is empty")
        elif secret in KNOWN_DEVELOPMENT_SECRETS or len(secret.encode()) < MIN_SECRET_BYTES:
            problems.append("AUTH.secret is a known development secret or shorter than "
                            f"{MIN_SECRET_BYTES} bytes")
            if development:  # accepted on a laptop, as asked for
                verifier.keys.append((secret, ("HS256",)))
        else:
            verifier.keys.append((secret, ("HS256",)))
    if not verifier.keys and not verifier.jwks and not problems:
        problems.append("no key is configured (AUTH.public_key_file, AUTH.jwks_file or "
                        "AUTH.secret with HS256)")
    if problems:
        message = "; ".join(problems)
        if not development:
            raise AuthMisconfigured(f"Refusing to start: {message}. Set AUTH_MODE=development "
                                    "only on a developer's machine.")
        log.warning("AUTH in development mode: %s", message)
        if not verifier.keys and not verifier.jwks:
            verifier.problem = message
    return verifier


def who_from_claims(claims):
    roles = claims.get("roles") or []
    if isinstance(roles, str):
        roles = roles.split()
    team = claims.get("team")
    return {"sub": str(claims["sub"]), "roles": [str(r) for r in roles],
            "team": str(team) if team else None}


def bearer_token(request, realm="dealflow"):
    header = request.headers.get("Authorization", "")
    if not header:
        raise unauthorized("A bearer token is required (Authorization: Bearer <token>).",
                           error=None, realm=realm)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Use 'Authorization: Bearer <token>'.", error="invalid_request",
                           realm=realm)
    return token.strip()


class Authenticator(SharedExtension):
    """One verifier per container, built as it starts: a misconfigured service stops there
    (`nameko run` exits) rather than serving without authentication."""

    def setup(self):
        self.verifier = build_verifier(self.container.config)
        # the directory is read now too: a missing or malformed file stops the start
        self.directory = lambda: people.directory(self.container.config)
        self.directory()

    def authenticate(self, request):
        who = who_from_claims(self.verifier.verify(bearer_token(request, self.verifier.realm)))
        if who["team"] is None:  # a token without `team`: the directory's
            who["team"] = self.directory().team_of(who["sub"])
        return who


def caller(request, config):
    """The authenticated caller of this request: {"sub", "roles", "team"}. The kit's
    entrypoint has resolved it already; a request it did not see is verified here."""
    who = getattr(request, "caller", None)
    if who is not None:
        return who
    return who_from_claims(build_verifier(config).verify(bearer_token(request)))


def require_role(who, *roles, config=None):
    """Forbidden (403) unless the caller has one of `roles`; Unauthorized without a caller."""
    if who is None:
        raise unauthorized("A bearer token is required.", error=None)
    if not set(roles) & set(who["roles"]):
        raise Forbidden(f"Requires one of the roles: {', '.join(roles)}.")


def actor_id(who):
    """The actor of a write: always the token's subject, never a value from the body."""
    return who["sub"] if who else None


def system_actor(service):
    """The actor of writes by timers and event handlers (DESIGN "People")."""
    return f"system:{service}"
