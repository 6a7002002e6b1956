"""Leads service: nameko entrypoints only; rules live in the domain, queries in the store."""
from kit.mongo import Store
from kit.ops import Operational
from leads.store import LeadsStore


class LeadsService(Operational):
    name = "leads"

    store = Store(LeadsStore)
