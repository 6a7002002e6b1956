"""Metrics service: nameko entrypoints only; rules live in the domain, queries in the store."""
from kit.mongo import Store
from kit.ops import Operational
from metrics.store import MetricsStore


class MetricsService(Operational):
    name = "metrics"

    store = Store(MetricsStore)
