"""Deals service: nameko entrypoints only; rules live in the domain, queries in the store."""
from deals.store import DealsStore
from kit.mongo import Store
from kit.ops import Operational


class DealsService(Operational):
    name = "deals"

    store = Store(DealsStore)
