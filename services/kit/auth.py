"""Who is calling: a JWT bearer token (PyJWT, HS256 by default) with `sub` and `roles`.

With `AUTH.required: false` (local development) a request without a token is accepted as
anonymous; a token that is present is always verified.
"""
import jwt

from kit.config import setting
from kit.errors import Forbidden, Unauthorized


def caller(request, config):
    """Returns {"sub": ..., "roles": [...]} or None for an anonymous caller."""
    header = request.headers.get("Authorization", "")
    if not header:
        if setting(config, "AUTH.required", False):
            raise Unauthorized("A bearer token is required.")
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Use 'Authorization: Bearer <token>'.")
    try:
        claims = jwt.decode(
            token,
            setting(config, "AUTH.secret", ""),
            algorithms=[setting(config, "AUTH.algorithm", "HS256")],
            audience=setting(config, "AUTH.audience", "dealflow"),
            options={"require": ["sub", "exp"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"Invalid token: {exc}.") from None
    roles = claims.get("roles") or []
    return {"sub": str(claims["sub"]), "roles": list(roles)}


def require_role(who, *roles, config=None):
    """Raise Forbidden unless the caller has one of `roles` (anonymous passes when auth is
    not required, which is how local development works)."""
    if who is None:
        if config is not None and setting(config, "AUTH.required", False):
            raise Unauthorized("A bearer token is required.")
        return
    if not set(roles) & set(who["roles"]):
        raise Forbidden(f"Requires one of the roles: {', '.join(roles)}.")


def actor_id(who):
    return who["sub"] if who else None
