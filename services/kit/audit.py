"""The audit trail: every authenticated write a service answers (who, what, when, from
which address, and the answer's status) appended to its own `audit` collection, read by
admins through `GET /api/v1/audit` (newest first, by cursor).

Nothing in the code updates or deletes an entry. The entry is written after the write it
records, so a crash between the two can lose an entry; the entity's own history (its `by`
and the events' `actor`) is the atomic record of who changed it. A hot write path carries
its entry in the entity's write instead (`carried`, then kit.outbox.with_audit): the outbox
relay inserts it before it publishes that write's events, so such an entry is never lost
and costs the request no round trip of its own.

The address is the peer's, unless the peer is one of `AUTH.trusted_proxies` (addresses or
networks): then it is the last X-Forwarded-For hop that is not a trusted proxy.
"""
import ipaddress
import logging
import uuid

from marshmallow import Schema, fields, validate
from nameko.extensions import DependencyProvider
from pymongo import DESCENDING
from pymongo.errors import PyMongoError

from kit.config import setting
from kit.fields import utcnow
from kit.mongo import Store
from kit.outbox import AUDIT_COLLECTION

log = logging.getLogger(__name__)

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _networks(entries):
    if isinstance(entries, str):  # AUTH_TRUSTED_PROXIES=10.0.0.0/8,192.168.1.5
        entries = entries.split(",")
    return tuple(ipaddress.ip_network(str(e).strip(), strict=False)
                 for e in entries or () if str(e).strip())


def _trusted(address, networks):
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(request, networks):
    """The caller's address: X-Forwarded-For is believed only as far as trusted proxies
    wrote it (right to left), never from the client itself."""
    address = request.remote_addr
    if not networks or not address or not _trusted(address, networks):
        return address
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")
            if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
        address = hop
    return address


class AuditTrail(DependencyProvider):
    """Appends entries for the HTTP entrypoint and pages them for the audit route."""

    def setup(self):
        self.networks = _networks(setting(self.container.config, "AUTH.trusted_proxies"))
        self._indexed = False

    def _collection(self):
        store = next((d.store for d in self.container.dependencies
                      if isinstance(d, Store) and d.store is not None), None)
        if store is None:
            return None
        coll = store.db[AUDIT_COLLECTION]
        if not self._indexed:
            coll.create_index([("at", DESCENDING), ("_id", DESCENDING)], name="at")
            self._indexed = True
        return coll

    def entry(self, request, who, action, status):
        """The entry of this request (None for reads and for anonymous callers)."""
        if request.method not in WRITES or who is None:
            return None
        return {
            "_id": str(uuid.uuid4()),
            "at": utcnow(),
            "actor": who["sub"],
            "roles": list(who["roles"]),
            "service": self.container.service_name,
            "action": action,
            "method": request.method,
            "path": request.path,
            "target": (getattr(request, "path_values", None) or {}).get("id"),
            "status": status,
            "address": client_address(request, self.networks),
        }

    def carried(self, request, action, status):
        """The entry for a write to carry (kit.outbox.with_audit), answering `status`;
        call `carrying(request)` once that write succeeded, and `record` writes nothing
        more for the request."""
        return self.entry(request, getattr(request, "caller", None), action, status)

    @staticmethod
    def carrying(request):
        request.audit_carried = True

    def record(self, request, who, action, status):
        if getattr(request, "audit_carried", False):
            return  # the write carried it (kit.outbox), the relay inserts it
        entry = self.entry(request, who, action, status)
        if entry is None:
            return
        try:
            coll = self._collection()
            if coll is not None:
                coll.insert_one(entry)
        except PyMongoError as exc:  # the write itself succeeded; say the entry is missing
            log.error("audit entry lost: %s", exc, extra={"audit": {
                k: str(v) for k, v in entry.items()}})

    def page(self, limit, after=None):
        coll = self._collection()
        if coll is None:
            return [], False
        from kit.paging import keyset_filter  # kit.paging imports kit.http, which uses us

        query = keyset_filter(after, time_key="at", descending=True) if after else {}
        rows = list(coll.find(query).sort([("at", DESCENDING), ("_id", DESCENDING)])
                    .limit(limit + 1))
        return rows[:limit], len(rows) > limit

    def get_dependency(self, worker_ctx):
        return self


class AuditQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(validate=validate.Length(max=512))


class AuditEntry(Schema):
    id = fields.String(attribute="_id")
    at = fields.AwareDateTime()
    actor = fields.String()
    roles = fields.List(fields.String())
    service = fields.String()
    action = fields.String()
    method = fields.String()
    path = fields.String()
    target = fields.String(allow_none=True)
    status = fields.Integer()
    address = fields.String(allow_none=True)


class AuditPage(Schema):
    items = fields.List(fields.Nested(AuditEntry))
    next_cursor = fields.String(allow_none=True)
