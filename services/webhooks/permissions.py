"""Who may call each webhooks route (kit.permissions; docs/permissions.md is generated
from this table). Admins manage subscriptions; an integration (the integrator's system)
reads its subscriptions and their delivery logs, to see what reached it."""
from kit.permissions import ALL

READ = {"admin": ALL, "integration": ALL}
ADMIN = {"admin": ALL}

PERMISSIONS = {
    "create_subscription": ADMIN,
    "list_subscriptions": READ,
    "get_subscription": READ,
    "update_subscription": ADMIN,
    "delete_subscription": ADMIN,
    "rotate_secret": ADMIN,
    "enable_subscription": ADMIN,
    "disable_subscription": ADMIN,
    "list_deliveries": READ,
    "get_delivery": READ,
    "redeliver": ADMIN,
}
