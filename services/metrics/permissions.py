"""Who may call each metrics route (kit.permissions; docs/permissions.md is generated from
this table). The funnel is company-wide, so it is for those who see every team."""
from kit.permissions import ALL

PERMISSIONS = {
    "funnel": {"admin": ALL, "director": ALL, "manager": ALL, "finance": ALL},
}
