"""Who may call each support route (kit.permissions; docs/permissions.md is generated from
this table). Agents work every ticket (the queue is shared, dispatch decides who holds
one); leads and managers also (re)assign tickets and edit the roster; integrations open
tickets and record customer replies from the e-mail, web and chat channels, and fetch the
rating link and the customer's contact notify mails with (events carry neither). The
customer's rating comes through a signed link: public (its view and the rating)."""
from kit.permissions import ALL, PUBLIC

AGENTS = {"admin": ALL, "manager": ALL, "support_lead": ALL, "support_agent": ALL}
LEADS = {"admin": ALL, "manager": ALL, "support_lead": ALL}
INTAKE = {**AGENTS, "integration": ALL}
# delivery projects: support runs them; sales managers and directors follow them
DELIVERY_READ = {**AGENTS, "director": ALL}

PERMISSIONS = {
    "create_ticket": INTAKE,
    "get_ticket": AGENTS,
    "list_tickets": AGENTS,
    "move_status": AGENTS,
    "assign_ticket": LEADS,
    "add_reply": INTAKE,
    "list_replies": AGENTS,
    "rating_link": INTAKE,
    "ticket_customer": {"admin": ALL, "integration": ALL},
    "rating_view": PUBLIC,
    "rate_ticket": PUBLIC,
    "list_agents": AGENTS,
    "put_agent": LEADS,
    "list_deliveries": DELIVERY_READ,
    "get_delivery": DELIVERY_READ,
    "complete_step": AGENTS,
}
