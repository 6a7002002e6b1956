"""MongoDB queries of the support service; nothing else touches its collections."""
from kit.mongo import BaseStore


class SupportStore(BaseStore):
    outbox_collections = ()
