"""MongoDB queries of the deals service; nothing else touches its collections."""
from kit.mongo import BaseStore


class DealsStore(BaseStore):
    outbox_collections = ()
