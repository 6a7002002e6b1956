"""Signed, expiring customer links (itsdangerous), with the key id in the token so that
keys can be rotated: `<key id>.<signed payload>`. The payload names what the link opens
and until when; the expiry is checked against the caller's clock (tests inject one).

(A stand-in until kit/links.py lands: the integrator unifies the two.)
"""
import datetime as dt

from itsdangerous import BadSignature, URLSafeSerializer

from kit.errors import Forbidden


class LinkInvalid(Forbidden):
    title = "Link not valid"


class Links:
    def __init__(self, keys, current_key_id):
        if current_key_id not in keys:
            raise ValueError(f"no link key {current_key_id!r}")
        self.keys = {str(k): str(v) for k, v in keys.items()}
        self.current = str(current_key_id)

    @classmethod
    def from_config(cls, section):
        return cls(section["keys"], section["key_id"])

    def _serializer(self, key_id, purpose):
        return URLSafeSerializer(self.keys[key_id], salt=f"dealflow.{purpose}")

    def sign(self, purpose, payload, expires_at):
        body = {**payload, "exp": int(expires_at.timestamp())}
        return f"{self.current}.{self._serializer(self.current, purpose).dumps(body)}"

    def verify(self, purpose, token, now):
        """The payload of a genuine, unexpired token for `purpose`; LinkInvalid (with
        `reason` tampered or expired) otherwise."""
        key_id, _, signed = (token or "").partition(".")
        if key_id not in self.keys or not signed:
            raise LinkInvalid("This link is not valid (altered or incomplete).",
                              reason="tampered")
        try:
            body = self._serializer(key_id, purpose).loads(signed)
        except BadSignature:
            raise LinkInvalid("This link is not valid (altered or incomplete).",
                              reason="tampered") from None
        expires = dt.datetime.fromtimestamp(body.pop("exp"), dt.UTC)
        if now >= expires:
            raise LinkInvalid(f"This link expired at {expires.isoformat()}.",
                              reason="expired", expired_at=expires.isoformat())
        return body
