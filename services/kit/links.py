"""Signed customer links (quote acceptance, contract signing, CSAT, unsubscribe).

A link token is `<key id>.<itsdangerous token>`: the payload (purpose, subject, link id,
expiry, a little data) is signed with the key its id names, salted with the purpose, so a
CSAT link cannot accept a quote. The current key signs; every configured key verifies, so
a key is rotated by adding a new one, making it current, and removing the old one once the
links it signed have expired (a link of a removed key is refused as `unknown_key`).

Keys never live in git: `LINKS.keys` ("kid=secret,kid2=secret2", from the environment or a
secret), and/or `LINKS.keys_dir` (one file per key, `<kid>.key`, e.g. a mounted Secret);
`LINKS.current` names the signing key (default: the last key in name order). Local
development only (`LINKS.dev_dir`, which deploy/local/services.sh sets to var/links)
generates one on first use. A service that signs or verifies links declares
`links = LinkKeys()` and carries in its config.yml:

    LINKS:
      keys: ${LINK_KEYS:}
      keys_dir: ${LINK_KEYS_DIR:}
      current: ${LINK_KEY_CURRENT:}
      dev_dir: ${LINK_KEYS_DEV_DIR:}

Without a key it refuses to start.

Verifying answers the claims or raises a LinkError whose `kind` says why: tampered (403),
unknown_key (403), expired (410), used (409). Single use is recorded by the service that
owns the subject, atomically with its effect: `check_unused`/`mark_used` inside the
entity's versioned change (the usual case), or `consume` against a collection of its own
when there is no such entity.
"""
import datetime as dt
import os
import re
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeSerializer
from nameko.extensions import DependencyProvider

from kit.config import setting
from kit.errors import Conflict, Forbidden, Gone

KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
USED = "used_links"


class LinkError(Exception):
    """Mixin of the link refusals; `kind` is machine-readable, also in the problem body."""


class LinkTampered(LinkError, Forbidden):
    title = "Invalid link"


class LinkUnknownKey(LinkError, Forbidden):
    title = "Invalid link"


class LinkExpired(LinkError, Gone):
    title = "Link expired"


class LinkUsed(LinkError, Conflict):
    title = "Link already used"


def _refuse(cls, kind, detail):
    return cls(detail, kind=kind)


@dataclass(frozen=True)
class Claims:
    purpose: str
    subject: str
    link_id: str
    expires_at: dt.datetime
    data: dict
    kid: str


class Keyring:
    """Keys by id; `current` signs, all verify."""

    def __init__(self, keys, current=None, section="LINKS"):
        if not keys:
            raise ValueError(f"No key is configured ({section}.keys or {section}.keys_dir).")
        for kid, secret in keys.items():
            if not KID.match(kid):
                raise ValueError(f"{section} key id {kid!r} must match {KID.pattern}.")
            if len(secret) < 32:
                raise ValueError(f"{section} key {kid!r} is shorter than 32 characters.")
        self.keys = dict(keys)
        self.current = current or sorted(keys)[-1]
        if self.current not in self.keys:
            raise ValueError(f"The current {section} key {self.current!r} is not configured.")

    @classmethod
    def from_config(cls, config, section="LINKS"):
        """The keys of config `section` (LINKS for links; the same shape serves any
        service key, such as webhooks' sealing key)."""
        keys = parse_keys(setting(config, f"{section}.keys") or "")
        keys_dir = setting(config, f"{section}.keys_dir") or ""
        if keys_dir:
            keys.update(read_key_files(Path(keys_dir)))
        dev_dir = setting(config, f"{section}.dev_dir") or ""
        if not keys and dev_dir:
            keys = dev_keys(Path(dev_dir))
        return cls(keys, setting(config, f"{section}.current") or None, section)

    def sign(self, purpose, subject, expires_at, data=None, link_id=None):
        """A token for `purpose` on `subject`, valid until `expires_at` (aware UTC)."""
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware.")
        payload = {"s": subject, "l": link_id or str(uuid.uuid4()),
                   "e": int(expires_at.timestamp()), "d": data or {}}
        signed = URLSafeSerializer(self.keys[self.current], salt=purpose).dumps(payload)
        return f"{self.current}.{signed}"

    def verify(self, token, purpose, now):
        """The claims of a token for `purpose`, or a LinkError. Expiry is checked after the
        signature: an expired link reports expiry only when it is genuine."""
        kid, sep, signed = (token or "").partition(".")
        if not sep or not KID.match(kid):
            raise _refuse(LinkTampered, "tampered", "The link is malformed.")
        secret = self.keys.get(kid)
        if secret is None:
            raise _refuse(LinkUnknownKey, "unknown_key",
                          "The link was signed with a key that is no longer valid.")
        try:
            payload = URLSafeSerializer(secret, salt=purpose).loads(signed)
        except BadSignature:
            raise _refuse(LinkTampered, "tampered",
                          "The link's signature does not match.") from None
        expires_at = dt.datetime.fromtimestamp(payload["e"], dt.UTC)
        if now >= expires_at:
            raise _refuse(LinkExpired, "expired",
                          f"The link expired at {expires_at.isoformat()}.")
        return Claims(purpose=purpose, subject=payload["s"], link_id=payload["l"],
                      expires_at=expires_at, data=payload["d"], kid=kid)


class LinkKeys(DependencyProvider):
    """The service's Keyring, loaded once per container: a missing or weak key stops the
    service at start, not at the first link."""

    def setup(self):
        self.keyring = Keyring.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.keyring


def parse_keys(text):
    """"kid=secret,kid2=secret2" -> {kid: secret}."""
    keys = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kid, sep, secret = item.partition("=")
        if not sep:
            raise ValueError("Keys are kid=secret pairs separated by commas.")
        keys[kid.strip()] = secret.strip()
    return keys


def read_key_files(directory):
    """{kid: secret} from `<kid>.key` files (a mounted Secret's keys)."""
    return {path.stem: path.read_text(encoding="utf-8").strip()
            for path in sorted(directory.glob("*.key"))}


def dev_keys(directory):
    """Local development: the keys under `directory`, one generated on first use (mode
    0600). Never used where LINKS.keys or LINKS.keys_dir is configured."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = read_key_files(directory)
    if not keys:
        path = directory / "dev1.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(48))
        keys = read_key_files(directory)
    return keys


# --- single use -------------------------------------------------------------------------------


def check_unused(entity, claims):
    """Inside a versioned change's decide: refuse a link this entity recorded as used."""
    if claims.link_id in (entity.get(USED) or ()):
        raise _refuse(LinkUsed, "used", "The link was used already.")


def mark_used(change, claims):
    """Record the link as used in the same write as its effect (a kit.changes.Change)."""
    change.push[USED] = claims.link_id
    return change


def consume(collection, claims, now):
    """Record a single use in a collection of the service's own (the unique _id is the
    claim; a second use raises LinkUsed). Its `expires_at` (indexed by
    `ensure_consumed_index`) lets the owner remove records of expired links."""
    from pymongo.errors import DuplicateKeyError

    try:
        collection.insert_one({"_id": claims.link_id, "purpose": claims.purpose,
                               "subject": claims.subject, "used_at": now,
                               "expires_at": claims.expires_at})
    except DuplicateKeyError:
        raise _refuse(LinkUsed, "used", "The link was used already.") from None


def ensure_consumed_index(collection):
    collection.create_index("expires_at", name="expires_at")


def sweep_consumed(collection, now):
    """Forget uses of links that have expired (an index range): an expired link is refused
    as expired before its use is looked at."""
    return collection.delete_many({"expires_at": {"$lt": now}}).deleted_count
