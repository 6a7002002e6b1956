"""Who may call each metrics route (kit.permissions; docs/permissions.md is generated from
this table). The funnel is company-wide, so it is for those who see every team."""
from kit.permissions import ALL

PERMISSIONS = {
    "funnel": {"admin": ALL, "director": ALL, "manager": ALL, "finance": ALL},
    "forecast": {"admin": ALL, "director": ALL, "manager": ALL, "finance": ALL},
    "forecast_backtest": {"admin": ALL, "director": ALL, "manager": ALL, "finance": ALL},
    # a rebuild reads every stream and writes a whole database: platform admins only
    "start_rebuild": {"admin": ALL},
    "rebuild_status": {"admin": ALL},
}
