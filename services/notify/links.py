"""Signed unsubscribe links (itsdangerous): the token names the recipient and channel, and
the key that signed it (`<key id>.<signed payload>`), so keys rotate: the newest signs,
the previous ones still verify. A link that does not verify is no link (404). Until the
kit's signed links (kit/links.py) land, notify keeps this small module of its own."""
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from kit.errors import NotFound

SALT = "dealflow.notify.unsubscribe"


class Links:
    def __init__(self, key_id, secret, previous=None, max_age_days=365):
        self.key_id = str(key_id)
        self.keys = {**{str(k): v for k, v in (previous or {}).items()}, self.key_id: secret}
        self.max_age = int(float(max_age_days) * 86400)

    def sign(self, payload):
        signer = URLSafeTimedSerializer(self.keys[self.key_id], salt=SALT)
        return f"{self.key_id}.{signer.dumps(payload)}"

    def verify(self, token):
        key_id, _, signed = str(token).partition(".")
        if key_id not in self.keys or not signed:
            raise NotFound("This link is not valid.")
        try:
            return URLSafeTimedSerializer(self.keys[key_id], salt=SALT).loads(
                signed, max_age=self.max_age)
        except SignatureExpired:
            raise NotFound("This link has expired.") from None
        except BadSignature:
            raise NotFound("This link is not valid.") from None
