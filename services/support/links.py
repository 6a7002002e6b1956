"""Signed customer links (the CSAT rating link) with itsdangerous: the token names its key
id, so keys rotate (new links use the current key, older keys still verify). A stand-in
until the shared kit/links.py lands; the token carries ids only, never personal data.

Token: "<key id>.<itsdangerous URL-safe timed token of the payload>".
"""
import itsdangerous

from kit.errors import Forbidden


class LinkInvalid(Forbidden):
    title = "Invalid link"


class Links:
    def __init__(self, keys, current, salt, max_age_seconds):
        if current not in keys:
            raise ValueError(f"The current link key {current!r} is not among the keys.")
        self.serializers = {kid: itsdangerous.URLSafeTimedSerializer(secret, salt=salt)
                            for kid, secret in keys.items()}
        self.current = current
        self.max_age = max_age_seconds

    def sign(self, payload):
        return f"{self.current}.{self.serializers[self.current].dumps(payload)}"

    def verify(self, token):
        """The payload, or LinkInvalid saying why (unknown key, tampered, expired)."""
        kid, _, signed = token.partition(".")
        serializer = self.serializers.get(kid)
        if serializer is None or not signed:
            raise LinkInvalid("This link is not valid (unknown signing key); ask for a new one.")
        try:
            return serializer.loads(signed, max_age=self.max_age)
        except itsdangerous.SignatureExpired:
            raise LinkInvalid("This link has expired; ask for a new one.") from None
        except itsdangerous.BadData:
            raise LinkInvalid("This link is not valid (it was altered); use the link as "
                              "you received it.") from None
