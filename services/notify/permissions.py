"""Who may call each notify route (kit.permissions; docs/permissions.md is generated from
this table). The delivery log holds addresses and what people were told: admins and
directors read all of it, managers too (it is how they see that their team heard);
templates and rules are read by them, and admins set rules. Unsubscribing is public: the
signed link is the permission."""
from kit.permissions import ALL, PUBLIC

READ = {"admin": ALL, "director": ALL, "manager": ALL}

PERMISSIONS = {
    "list_notifications": READ,
    "get_notification": READ,
    "list_rules": READ,
    "put_rule": {"admin": ALL},
    "delete_rule": {"admin": ALL},
    "preview": READ,
    "unsubscribe_page": PUBLIC,
    "unsubscribe": PUBLIC,
}
