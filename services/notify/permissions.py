"""Who may call each notify route (kit.permissions; docs/permissions.md is generated from
this table). The delivery log, rules and previews are for admins and managers (as
NOTIFY.reader_roles, which may narrow it further); unsubscribe links are public: the
signed token in the link is the customer's authority (customer:<link> writes)."""
from kit.permissions import ALL, PUBLIC

READERS = {"admin": ALL, "manager": ALL}

PERMISSIONS = {
    "list_notifications": READERS,
    "get_notification": READERS,
    "list_rules": READERS,
    "preview": READERS,
    "unsubscribe_page": PUBLIC,
    "unsubscribe": PUBLIC,
}
