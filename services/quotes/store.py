"""MongoDB queries of the quotes service; nothing else touches its collections."""
from kit.mongo import BaseStore


class QuotesStore(BaseStore):
    outbox_collections = ()
