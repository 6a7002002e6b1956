"""Who may call each leads route, and how far they reach (kit.permissions; the table in
docs/permissions.md is generated from this one). A rep reaches the leads they own, a
manager their team's (the lead's `team`), directors read everything, integrations read
and create leads; admins administer all of it."""
from kit.permissions import ALL, OWN, PUBLIC, TEAM

READ = {"admin": ALL, "director": ALL, "manager": TEAM, "rep": OWN, "integration": ALL}
WORK = {"admin": ALL, "manager": TEAM, "rep": OWN}

PERMISSIONS = {
    # a rep's own capture is theirs; others go where the assignment rules send them
    "create_lead": {"admin": ALL, "manager": TEAM, "rep": OWN, "integration": ALL},
    "import_leads": {"admin": ALL, "manager": TEAM, "integration": ALL},
    "get_lead": READ,
    "list_leads": READ,
    "timeline": READ,
    "list_tasks": READ,
    "add_activity": WORK,
    "change_status": WORK,
    "convert": WORK,
    "add_task": WORK,
    "finish_task": WORK,
    "assign": {"admin": ALL, "manager": TEAM},
    # web-to-lead: website forms post without a token; the form's public key, its allowed
    # origins and the rate limits guard it (leads.capture)
    "capture_form_lead": PUBLIC,
    "capture_preflight": PUBLIC,
    # erasure of personal data on request (PIPL/GDPR) is an administrator's act
    "erase": {"admin": ALL},
    "search_leads": READ,
    "patch_lead": WORK,
    "recycle": WORK,
    # accounts and contacts (leads.accounts): reached as the leads they came from
    "create_account": WORK,
    "list_accounts": READ,
    "get_account": READ,
    "account_timeline": READ,
    "merge_account": {"admin": ALL, "manager": TEAM},
    "create_contact": WORK,
    "list_contacts": READ,
    "get_contact": READ,
    "contact_timeline": READ,
    "create_lead_field": {"admin": ALL},
    "list_lead_fields": READ,
    "patch_account": WORK,
    "patch_contact": WORK,
    "create_account_field": {"admin": ALL},
    "list_account_fields": READ,
    "create_contact_field": {"admin": ALL},
    "list_contact_fields": READ,
}
