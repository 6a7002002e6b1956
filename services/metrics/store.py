"""MongoDB queries of the metrics service; nothing else touches its collections."""
from kit.mongo import BaseStore


class MetricsStore(BaseStore):
    outbox_collections = ()
