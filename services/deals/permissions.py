"""Who may call each deals route, and how far they reach (kit.permissions; the table in
docs/permissions.md is generated from this one). A rep reaches the deals they own, a
manager their team's (the deal's `team`, its owner's team in the people directory);
directors and finance read everything; admins manage pipelines and all deals."""
from kit.permissions import ALL, OWN, TEAM

READ = {"admin": ALL, "director": ALL, "finance": ALL, "manager": TEAM, "rep": OWN}
WORK = {"admin": ALL, "manager": TEAM, "rep": OWN}
PIPELINES = {"admin": ALL, "director": ALL, "finance": ALL, "manager": ALL, "rep": ALL}

PERMISSIONS = {
    "list_pipelines": PIPELINES,
    "get_pipeline": PIPELINES,
    "create_pipeline": {"admin": ALL},
    "replace_pipeline": {"admin": ALL},
    "create_deal": WORK,
    "get_deal": READ,
    "deal_history": READ,
    "list_deals": READ,
    "search_deals": READ,
    "forecast": READ,
    "patch_deal": WORK,
    "move_stage": WORK,
    "mark_won": WORK,
    "mark_lost": WORK,
    "reopen": WORK,
    "record_history": {"admin": ALL},
    "log_activity": WORK,
    "deal_timeline": READ,
    "add_task": WORK,
    "list_tasks": READ,
    "finish_task": WORK,
    "create_field": {"admin": ALL},
    "list_fields": PIPELINES,
}
