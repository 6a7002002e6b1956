"""Who may call each quotes route, and how far they reach (kit.permissions; the table in
docs/permissions.md is generated from this one). A rep reaches the quotes and contracts
they own; managers, directors, finance and admins reach all (they approve across teams).
Approving needs a tier's role on top (quotes.approvals), and nobody approves their own
quote. The customer's routes are public: the signed link in the body or query is the
credential. Integrations (notify) read a customer's contact and links to mail them: events
carry neither (DESIGN)."""
from kit.permissions import ALL, OWN, PUBLIC

EVERYONE = {"admin": ALL, "director": ALL, "finance": ALL, "manager": ALL, "rep": ALL}
READ = {"admin": ALL, "director": ALL, "finance": ALL, "manager": ALL, "rep": OWN}
WORK = {"admin": ALL, "director": ALL, "manager": ALL, "rep": OWN}
APPROVE = {"admin": ALL, "director": ALL, "finance": ALL, "manager": ALL}
LOOKUP = {"admin": ALL, "integration": ALL}

PERMISSIONS = {
    "create_product": {"admin": ALL},
    "replace_product": {"admin": ALL},
    "list_products": EVERYONE,
    "get_product": EVERYONE,
    "create_quote": WORK,
    "get_quote": READ,
    "list_quotes": READ,
    "edit_quote": WORK,
    "submit": WORK,
    "approve": APPROVE,
    "reject": APPROVE,
    "send": WORK,
    "get_link": {**WORK, **LOOKUP},
    "quote_customer": LOOKUP,
    "revise": WORK,
    "void": WORK,
    "quote_pdf": READ,
    "public_quote": PUBLIC,
    "accept": PUBLIC,
    "decline": PUBLIC,
    "get_contract": READ,
    "list_contracts": READ,
    "send_contract": WORK,
    "contract_link": {**WORK, **LOOKUP},
    "contract_customer": LOOKUP,
    "reschedule_contract": WORK,
    "contract_pdf": READ,
    "public_contract": PUBLIC,
    "public_contract_pdf": PUBLIC,
    "sign_contract": PUBLIC,
    "countersign": {"admin": ALL, "director": ALL},
    "record_payment": {"admin": ALL, "finance": ALL},
}
