"""Accounts (the companies a team sells to) and contacts (their people), pure.

A conversion creates or links an account and a contact:
- the contact is the person: found by the lead's e-mail or phone (a returning customer),
  else new;
- the account is the contact's when the person is known; else the account whose
  normalised company name (leads.keys) or e-mail domain matches the lead's (free-mail
  domains say nothing about a company and are never matched); else a new one, named after
  the company (or, for a person buying alone, after the person).
Duplicates: when the company name and the domain match two different accounts, the older
account wins (created first, then the lesser id): one rule, so every conversion of that
company lands in the same place, and `merge` folds the other into it.

Ids are derived from what identifies the record (the company key, the domain, the lead),
so two instances converting leads of one new company create one account, and a retried
conversion finds what its first attempt created. Unique keys (`company_key`,
`domain_key`, the contact's `email_key`/`phone_key`) keep manual creation from making
duplicates; a record without one gets a never-colliding placeholder (FerretDB v1 has no
partial indexes), as leads do.

After a conversion the contact holds the person's identity: the lead's dedup keys are
freed, so the next lead of that person is a new lead, linked to the account, not merged
into the old converted one.

Timelines: every entry after a record's first goes into its bucketed log (kit.changes
`log`, kit.buckets), never appended to the record by hand; a big customer's past stays
in buckets. A conversion is noted once: the store says whether the account's log holds
the lead's conversion already (`conversion_key`, an O(1) look-up), the rule reads no list.
"""
import uuid

from kit.changes import Change
from kit.errors import Conflict
from leads import domain
from leads.keys import normalise_company, normalise_name

NAMESPACE = uuid.UUID("2d3b5f36-93c4-5bb1-a8f0-8d1e0c7f4a21")


def email_domain(email, free_mail):
    """The company domain of an e-mail address, or None (none, or a free-mail one)."""
    if not email or "@" not in email:
        return None
    host = email.rsplit("@", 1)[1].strip().lower()
    return None if not host or host in free_mail else host


def placeholder(record_id):
    return f"none:{record_id}"


def account_id_for(company_key, domain_key, lead_id):
    basis = (f"company:{company_key}" if company_key else
             f"domain:{domain_key}" if domain_key else f"lead:{lead_id}")
    return str(uuid.uuid5(NAMESPACE, "account:" + basis))


def contact_id_for(lead_id):
    return str(uuid.uuid5(NAMESPACE, f"contact:lead:{lead_id}"))


def _entry(kind, now, actor, **extra):
    now = domain.to_millis(now)
    return {"id": str(uuid.uuid4()), "type": kind, "at": now, "actor": actor,
            "recorded_at": now, **extra}


# --- accounts ----------------------------------------------------------------------------------


def new_account(account_id, data, now, actor=None):
    """An account document and its account.created. `data`: name, and optionally domain,
    owner_id, team, lead_id (the lead whose conversion made it)."""
    now = domain.to_millis(now)
    company_key = normalise_company(data["name"])
    account = {
        "_id": account_id, "name": data["name"].strip(),
        "company_key": company_key or placeholder(account_id),
        "domain": data.get("domain"),
        "domain_key": data.get("domain") or placeholder(account_id),
        "owner_id": data.get("owner_id"), "team": data.get("team"),
        "custom": data.get("custom") or {},
        "merged_into": None, "created_by": actor, "created_at": now, "updated_at": now,
        "activities": [_entry("created", now, actor, lead_id=data.get("lead_id"))],
    }
    return account, [("account.created", {
        "account_id": account_id, "name": account["name"], "domain": account["domain"],
        "owner_id": account["owner_id"], "lead_id": data.get("lead_id"),
        "created_at": now})]


def account_for_lead(lead, free_mail):
    """What the conversion of `lead` asks of an account: the keys to match and the new
    account's data if none matches."""
    company_key = normalise_company(lead.get("company"))
    domain_key = email_domain(lead.get("email"), free_mail)
    return {
        "company_key": company_key, "domain_key": domain_key,
        "id": account_id_for(company_key, domain_key, lead["_id"]),
        "data": {"name": lead.get("company") or lead.get("name") or lead["_id"],
                 "domain": domain_key, "owner_id": lead.get("owner_id"),
                 "team": lead.get("team"), "lead_id": lead["_id"]},
    }


def older(a, b):
    return min((a, b), key=lambda acc: (acc["created_at"], acc["_id"]))


def choose(contact_account, by_company, by_domain):
    """The existing account a conversion links to, or None for a new one (the module's
    rule: a known person's account, else the company's, the older of two duplicates)."""
    if contact_account is not None:
        return contact_account
    found = [a for a in (by_company, by_domain) if a is not None]
    if not found:
        return None
    if len(found) == 2 and found[0]["_id"] != found[1]["_id"]:
        return older(*found)
    return found[0]


def surviving(account, resolve):
    """Follow `merged_into` to the account that holds the records now."""
    seen = set()
    while account is not None and account.get("merged_into") and account["_id"] not in seen:
        seen.add(account["_id"])
        account = resolve(account["merged_into"])
    return account


def conversion_key(entry):
    """The key of an account's timeline entry: a conversion's lead (None for others)."""
    return entry.get("lead_id") if entry.get("type") == "conversion" else None


def link_lead(account, lead_id, contact_id, now, actor=None, linked=False):
    """The account's timeline notes the conversion (None when it did already: `linked`,
    whether its log holds the lead's conversion, kit.buckets `holds`). A conversion retried
    after its account was merged lands in the survivor and is noted there too (the merged
    account's timeline keeps the first attempt's entry)."""
    if linked:
        return None
    return Change(log=[_entry("conversion", now, actor, lead_id=lead_id,
                              contact_id=contact_id)],
                  set={"updated_at": domain.to_millis(now)}, actor=actor)


def merge(duplicate, survivor, now, actor=None):
    """Fold `duplicate` into `survivor`: the duplicate points at it and keeps its keys, so
    a later conversion that matches them lands in the survivor (`surviving`). Returns the
    duplicate's change (its contacts and leads move in the store)."""
    if duplicate["_id"] == survivor["_id"]:
        raise Conflict("An account cannot be merged into itself.")
    if duplicate.get("merged_into"):
        raise Conflict(f"Account {duplicate['_id']} was merged into "
                       f"{duplicate['merged_into']} already.", into=duplicate["merged_into"])
    if survivor.get("merged_into"):
        raise Conflict(f"Account {survivor['_id']} was merged into "
                       f"{survivor['merged_into']}; merge into that one.",
                       into=survivor["merged_into"])
    return Change(set={"merged_into": survivor["_id"], "updated_at": domain.to_millis(now)},
                  log=[_entry("merged", now, actor, into=survivor["_id"])],
                  actor=actor, events=[("account.merged", {
                      "account_id": duplicate["_id"], "into_account_id": survivor["_id"]})])


# --- contacts ----------------------------------------------------------------------------------


def new_contact(contact_id, account_id, data, now, actor=None):
    """A contact document and its contact.created. `data`: name, email, phone, and
    optionally owner_id, team, lead_id."""
    now = domain.to_millis(now)
    lead_ids = [data["lead_id"]] if data.get("lead_id") else []
    contact = {
        "_id": contact_id, "account_id": account_id, "name": data["name"],
        "name_key": normalise_name(data["name"]),
        "email": data.get("email"), "phone": data.get("phone"),
        **domain.identity_keys(contact_id, data.get("email"), data.get("phone")),
        "title": data.get("title"), "custom": data.get("custom") or {},
        "owner_id": data.get("owner_id"), "team": data.get("team"), "lead_ids": lead_ids,
        "created_by": actor, "created_at": now, "updated_at": now,
        "activities": [_entry("created", now, actor, lead_id=data.get("lead_id"))],
    }
    return contact, [("contact.created", {
        "contact_id": contact_id, "account_id": account_id, "lead_id": data.get("lead_id"),
        "owner_id": contact["owner_id"], "created_at": now})]


def contact_from_lead(lead):
    return {k: lead.get(k) for k in ("name", "email", "phone", "owner_id", "team")} | {
        "lead_id": lead["_id"]}


def link_contact(contact, lead_id, now, actor=None):
    """The contact gains the lead (None when it has it)."""
    if lead_id in (contact.get("lead_ids") or ()):
        return None
    return Change(set={"lead_ids": [*(contact.get("lead_ids") or []), lead_id],
                       "updated_at": domain.to_millis(now)},
                  log=[_entry("lead", now, actor, lead_id=lead_id)],
                  actor=actor)


# --- edits ------------------------------------------------------------------------------------

# what a PATCH of an account or contact may set (their identity keys stay as created)
EDITABLE = {"account": ("custom",), "contact": ("title", "custom")}


def edit(record, entity, data, now, actor=None):
    """The change a PATCH makes (custom fields merge, null removes one; the timeline notes
    each field's old and new value; `<entity>.updated` moves the version, hence the ETag),
    or None when it changes nothing."""
    if record.get("erased") or record.get("merged_into"):
        raise Conflict(f"The {entity} was {'erased' if record.get('erased') else 'merged'}; "
                       "it cannot be edited.")
    after = {}
    for name in EDITABLE[entity]:
        if name not in data:
            continue
        value = data[name]
        if name == "custom":
            value = {k: v for k, v in {**(record.get("custom") or {}), **(value or {})}.items()
                     if v is not None}
        after[name] = value
    changed = [k for k, v in after.items() if v != record.get(k)]
    if not changed:
        return None
    ids = {f"{entity}_id": record["_id"]}
    if entity == "contact":
        ids["account_id"] = record["account_id"]
    # the event names the fields, never their values (events carry little personal data)
    return Change(set={**{k: after[k] for k in changed}, "updated_at": domain.to_millis(now)},
                  log=[_entry("update", now, actor, fields=changed, changes={
                      k: {"from": record.get(k), "to": after[k]} for k in changed})],
                  actor=actor, events=[(f"{entity}.updated", {
                      **ids, "owner_id": record.get("owner_id"), "changed": changed})])


# --- the lead's side ---------------------------------------------------------------------------


def converted(change, lead, account_id, contact_id):
    """The lead's conversion, linked: it names its account and contact (in the event too)
    and frees its dedup keys (the contact holds the person's identity now)."""
    change.set.update(account_id=account_id, contact_id=contact_id,
                      **domain.identity_keys(lead["_id"], None, None))
    for etype, data in change.events:
        if etype == "lead.converted":
            data.update(account_id=account_id, contact_id=contact_id)
    return change


def known_customer(contact):
    """The links a new lead of a known person gets (its account and contact), or {}."""
    if contact is None:
        return {}
    return {"account_id": contact["account_id"], "contact_id": contact["_id"]}


def timeline(record, leads=()):
    """A record's own entries and, for a contact, the activities of its leads (each naming
    its lead), in time order (`activities`: each whole log, its buckets read)."""
    entries = list(record.get("activities") or ())
    for lead in leads:
        entries += [{**a, "lead_id": lead["_id"]} for a in lead.get("activities") or ()]
    return sorted(entries, key=lambda e: (e["at"], e.get("recorded_at") or e["at"]))


def erase_contact(contact, now, actor=None, keep_custom=()):
    """Erasure on request reaches the contact a lead became: its personal data is blanked
    (custom fields but those configured as non-personal, the values an edit recorded) and
    its identity keys freed; None when that was done already. The contact holds its recent
    entries only: the store blanks the others in their buckets after this write, on every
    request (as a lead's, leads.erasure). The erasure is an entry of its own, so the relay's
    clear of entries read before it does not match (it reads them again)."""
    if contact.get("erased"):
        return None
    at = domain.to_millis(now)
    return Change(set={
        "name": "", "name_key": None, "email": None, "phone": None, "title": None,
        "custom": {k: v for k, v in (contact.get("custom") or {}).items() if k in keep_custom},
        **domain.identity_keys(contact["_id"], None, None),
        "activities": [{**a, "summary": None, **({"changes": None} if "changes" in a else {})}
                       for a in contact.get("activities") or ()],
        "erased": {"at": at, "by": actor}, "updated_at": at}, actor=actor,
        log=[_entry("erasure", at, actor)])
