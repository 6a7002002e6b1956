"""Support service: nameko entrypoints only; rules live in the domain, queries in the store."""
from kit.mongo import Store
from kit.ops import Operational
from support.store import SupportStore


class SupportService(Operational):
    name = "support"

    store = Store(SupportStore)
