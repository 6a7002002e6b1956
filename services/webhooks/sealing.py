"""Webhook secrets at rest: sealed with AES-256-GCM under a service key, never stored in
the clear, so a copy of the database (a backup, a support dump) cannot sign webhooks.

A sealed secret is `sealed:v1:<key id>:<base64 nonce + ciphertext>`. The AES key is
derived with HKDF from a SEAL key configured like link keys (kit.links.Keyring: "kid=secret"
from the environment, a directory of `<kid>.key` files from a mounted Secret, or a key
generated under var/ in local development); the current key seals, every configured key
unseals, so a key is rotated by adding one and making it current (stored secrets are
sealed again by the next rotation of each subscription's secret). The subscription's id is
the associated data: a sealed secret copied into another subscription does not open.

Secrets stored before sealing (`whsec_…` in the clear) still sign, and the migration
`subscription_secrets_sealed_v1` (webhooks.migrations) seals them once.
"""
import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nameko.extensions import DependencyProvider

from kit.links import Keyring

PREFIX = "sealed:v1:"
NONCE_BYTES = 12
INFO = b"dealflow webhook secret seal v1"


class SealBroken(Exception):
    """A stored secret that no configured key opens (its key was removed, or the value
    was altered or moved to another subscription)."""


def _aes(secret):
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=INFO).derive(secret.encode("utf-8")))


class Seal:
    def __init__(self, keyring):
        self.current = keyring.current
        self.ciphers = {kid: _aes(secret) for kid, secret in keyring.keys.items()}

    @classmethod
    def from_config(cls, config):
        return cls(Keyring.from_config(config, "SEAL"))

    def seal(self, secret, sub_id):
        nonce = os.urandom(NONCE_BYTES)
        sealed = self.ciphers[self.current].encrypt(
            nonce, secret.encode("utf-8"), sub_id.encode("utf-8"))
        return f"{PREFIX}{self.current}:{base64.b64encode(nonce + sealed).decode()}"

    def unseal(self, stored, sub_id):
        if not is_sealed(stored):
            return stored  # stored before sealing; the migration seals it
        kid, _, blob = stored.removeprefix(PREFIX).partition(":")
        cipher = self.ciphers.get(kid)
        if cipher is None:
            raise SealBroken(f"sealed with key {kid!r}, which is not configured")
        try:
            raw = base64.b64decode(blob, validate=True)
            return cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                  sub_id.encode("utf-8")).decode("utf-8")
        except (binascii.Error, InvalidTag, ValueError):
            raise SealBroken("the sealed secret does not open for this subscription") from None


def is_sealed(stored):
    return stored.startswith(PREFIX)


class SecretSeal(DependencyProvider):
    """The service's Seal, loaded once per container: a missing or weak key stops the
    service at start, not at the first subscription."""

    def setup(self):
        self.seal = Seal.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.seal
