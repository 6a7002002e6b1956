"""Deals service: nameko entrypoints only; rules live in the domain, queries in the store."""
from kit.mongo import Store
from kit.ops import Operational

from deals.store import DealsStore


class DealsService(Operational):
    name = "deals"

    store = Store(DealsStore)
