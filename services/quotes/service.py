"""Quotes service: nameko entrypoints only; rules live in the domain, queries in the store."""
from kit.mongo import Store
from kit.ops import Operational
from quotes.store import QuotesStore


class QuotesService(Operational):
    name = "quotes"

    store = Store(QuotesStore)
