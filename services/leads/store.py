"""MongoDB queries of the leads service; nothing else touches its collections."""
from kit.mongo import BaseStore


class LeadsStore(BaseStore):
    outbox_collections = ()
