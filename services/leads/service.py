"""Leads service: nameko entrypoints only; rules live in the domain, queries in the store."""
import uuid

from marshmallow import ValidationError
from nameko.dependency_providers import Config
from werkzeug.exceptions import RequestEntityTooLarge

from kit import activities, paging
from kit import customfield_schemas as CS
from kit import customfields as CF
from kit.auth import actor_id, caller, require_role, system_actor
from kit.config import setting
from kit.errors import Conflict, DealflowError, Forbidden, Invalid, NotFound, PayloadTooLarge
from kit.fields import utcnow
from kit.http import (
    QueryInvalid,
    decode_cursor,
    encode_cursor,
    http,
    json_body,
    query_args,
    read_body,
)
from kit.migrations import Migrations
from kit.mongo import Store
from kit.ops import Operational
from kit.people import directory
from kit.permissions import ALL, OWN, TEAM, scope_of
from kit.preconditions import etag, if_match
from kit.timers import config_timer
from kit.versioned import carries
from leads import accounts, capture, domain, editing, erasure, imports, search
from leads import record_schemas as R
from leads.assignment import Assignment
from leads.extensions import Rules
from leads.migrations import migrations as all_migrations
from leads.permissions import PERMISSIONS
from leads.records_store import ACCOUNTS, CONTACTS
from leads.schemas import (
    ActivityAdded,
    ActivityIn,
    AssignIn,
    CaptureIn,
    CaptureReceived,
    ConvertIn,
    DuplicateQuery,
    LeadCreated,
    LeadIn,
    LeadMerged,
    LeadOut,
    LeadPage,
    LeadPatch,
    ListQuery,
    RecycleIn,
    SearchQuery,
    StatusIn,
    TaskIn,
    TaskList,
    TaskOut,
    Timeline,
)
from leads.store import LeadsStore

TAGS = ["leads"]
RECORDS = ["accounts and contacts"]
FINISH = {"complete": activities.COMPLETED, "cancel": activities.CANCELLED}
LEAD = "/api/v1/leads/<id>"
ACCOUNT = "/api/v1/accounts/<id>"
CONTACT = "/api/v1/contacts/<id>"
FORM = "/api/v1/forms/<form_key>/leads"
# the capture path's schemas, built once: a schema's construction copies its declared
# fields, and marshmallow keeps no state of a call in the instance
LEAD_IN, DUPLICATE_QUERY, LEAD_CREATED = LeadIn(), DuplicateQuery(), LeadCreated()


class LeadsService(Operational):
    name = "leads"
    permissions = PERMISSIONS

    store = Store(LeadsStore)
    rules = Rules()
    forms = capture.Forms()
    config = Config()
    migrations = Migrations(all_migrations)

    # --- capture ---------------------------------------------------------------------------

    @http("POST", "/api/v1/leads", body=LeadIn, response=LeadCreated, status=201,
          query=DuplicateQuery, summary="Capture a lead", tags=TAGS,
          responses={409: "Duplicate e-mail or phone (existing_id in the body)"})
    def create_lead(self, request):
        data = json_body(request, LEAD_IN)
        on_duplicate = query_args(request, DUPLICATE_QUERY)["on_duplicate"]
        return self._capture(data, on_duplicate, actor_id(caller(request, self.config)),
                             scope_of(request), request)

    def _capture(self, data, on_duplicate, actor, scope, request):
        data["custom"] = self._typed(data.get("custom"))
        lead = domain.new_lead(data, str(uuid.uuid4()), utcnow(), self.rules, actor)
        # a rep's own capture stays theirs; everyone else's goes by the assignment rules
        owner = (Assignment(owner_id=scope.sub, team=scope.team, queue=None, rule="creator")
                 if scope.reach == OWN else None)
        try:
            # the lead's insert carries the request's audit entry (kit.audit)
            self.store.insert_new(lead, self.rules.assignment, actor, owner=owner,
                                  audit=self.audit_trail.carried(request, "create_lead", 201))
            self.audit_trail.carrying(request)
            return 201, LEAD_CREATED.dump({"id": lead["_id"]})
        except domain.DuplicateLead as duplicate:
            if scope.reach != ALL and not scope.allows(self.store.get(duplicate.existing_id)):
                # another owner's lead: neither its id nor a merge into it
                raise Conflict("A lead with this e-mail or phone exists outside your reach; "
                               "its owner or their manager can update it.") from None
            existing = domain.merge_target(on_duplicate, duplicate)
        merged = {}

        def decide(current):
            scope.check(current, "lead")
            change, merged["fields"] = domain.merge(current, data, utcnow(), self.rules, actor)
            return change

        after, _ = self.store.change(existing, decide)
        return 200, LeadMerged().dump({"id": existing, "merged": True,
                                       "fields": merged["fields"], "lead": after})

    # public, no token (leads.permissions; leads.capture says what keeps it safe)
    @http("POST", FORM, body=CaptureIn, response=CaptureReceived, status=202,
          summary="A website form's lead (public: the form's key and origins, rate-limited; "
                  "JSON or form-encoded; always 202, known addresses included)", tags=TAGS,
          responses={403: "Origin not allowed for this form", 404: "No such form",
                     429: "Rate limit (Retry-After)"})
    def capture_form_lead(self, request, form_key):
        return capture.submit(self.store, self.rules, self.forms, self.config, request,
                              form_key, utcnow())

    @http("OPTIONS", FORM, status=204, summary="CORS preflight of a form's origin",
          tags=TAGS, responses={403: "Origin not allowed", 404: "No such form"})
    def capture_preflight(self, request, form_key):
        return capture.preflight(self.forms, request, form_key)

    @http("POST", "/api/v1/leads/import", response=imports.ImportReport, status=200,
          query=imports.ImportQuery,
          summary="Import leads from CSV (UTF-8, GB18030/GBK or UTF-16 with BOM, or the charset "
                  "given; header row; at most 10,000 rows)", tags=TAGS,
          responses={403: "A historical import (?history=true) is for admins",
                     409: "Idempotency-Key reused with another file, or its import is running",
                     413: "The CSV is larger than the import allows"},
          expected_exceptions=(DealflowError, ValidationError))
    def import_leads(self, request):
        args = query_args(request, imports.ImportQuery())
        who = caller(request, self.config)
        if args["history"]:
            require_role(who, *setting(self.config, "IMPORT.history_roles", ["admin"]),
                         config=self.config)
        limits = imports.limits(self.config)
        raw, labelled = _csv_body(request, limits.max_bytes)
        key = request.headers.get("Idempotency-Key") or None
        result, replayed = imports.run(
            self.store, self.rules, raw, key, actor_id(who), limits=limits,
            charset=args.get("charset") or labelled, history=args["history"],
            known=directory(self.config).knows)
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        return 200, headers, imports.ImportReport().dump(result)

    # --- reading ---------------------------------------------------------------------------

    @http("GET", LEAD, response=LeadOut, summary="A lead", tags=TAGS,
          responses={404: "No such lead"})
    def get_lead(self, request, id):
        lead = self._lead(request, id)
        return 200, etag(lead["version"]), LeadOut().dump(lead)

    def _lead(self, request, id, full=False):
        """The lead if the caller reaches it; another rep's lead is as absent as a missing
        one (404), as it is from their lists."""
        return scope_of(request).check(self.store.get(id, full=full), "lead")

    @http("GET", "/api/v1/leads", query=ListQuery, response=LeadPage,
          summary="Leads, newest first, filtered and cursor-paginated", tags=TAGS)
    def list_leads(self, request):
        args = query_args(request, ListQuery())
        filters = {k: args[k] for k in ("status", "owner_id", "source", "grade") if k in args}
        reach = scope_of(request).query()
        if any(filters.get(k, v) != v for k, v in reach.items()):
            return LeadPage().dump({"items": [], "next_cursor": None})  # nothing in reach
        filters.update(reach)
        created = {}
        if "created_from" in args:
            created["$gte"] = args["created_from"]
        if "created_to" in args:
            created["$lt"] = args["created_to"]
        if created:
            filters["created_at"] = created
        after = paging.after(args["cursor"]) if "cursor" in args else None
        items, more = self.store.page(filters, args["limit"], after)
        return LeadPage().dump({"items": items, "next_cursor": paging.next_cursor(items, more)})

    @http("GET", LEAD + "/timeline", response=Timeline, summary="Activities in time order",
          tags=TAGS, responses={404: "No such lead"})
    def timeline(self, request, id):
        lead = self._lead(request, id, full=True)
        return Timeline().dump({"lead_id": id, "activities": domain.timeline(
            {"activities": self.store.activities(lead)})})

    @http("GET", "/api/v1/leads/search", query=SearchQuery, response=LeadPage,
          summary="Leads whose name, company, e-mail or phone starts with q (normalised), "
                  "filtered, in the matched key's order, by cursor", tags=TAGS)
    def search_leads(self, request):
        args = query_args(request, SearchQuery())
        searched = search.prefixes(args["q"], args["by"],
                                   setting(self.config, "SEARCH.default_region", "CN"))
        filters = search.scoped(
            {k: args[k] for k in ("status", "owner_id", "source", "grade") if k in args},
            scope_of(request).query())
        if filters is None:
            return LeadPage().dump({"items": [], "next_cursor": None})
        position = (search.position(decode_cursor(args["cursor"])) if "cursor" in args
                    else None)
        descending = args["order"] == "desc"
        streams = self.store.search(searched, filters, position, args["limit"], descending)
        rows, after = search.merge(streams, searched, args["limit"], descending)
        return LeadPage().dump({"items": rows, "next_cursor": encode_cursor(list(after))
                                if after is not None else None})

    # --- changes ---------------------------------------------------------------------------

    @http("PATCH", LEAD, body=LeadPatch, response=LeadOut,
          summary="Edit a lead at the version read (If-Match); emits lead.updated",
          tags=TAGS, responses={404: "No such lead", 409: "Stale If-Match, or another lead "
                                "has this e-mail or phone (existing_id)",
                                428: "If-Match missing"})
    def patch_lead(self, request, id):
        expected = if_match(request)
        data = json_body(request, LeadPatch())
        if data.get("custom"):
            data["custom"] = self._typed(data["custom"])
        actor = actor_id(caller(request, self.config))

        def decide(lead):
            scope_of(request).check(lead, "lead")
            change = editing.edit(lead, data, utcnow(), self.rules, actor)
            other = self.store.other_lead_with(id, editing.identity_changes(change))
            if other is not None:
                raise domain.DuplicateLead(other)
            return change

        lead, _ = self.store.change(id, decide, expected=expected)
        lead.pop("activities", None)
        return 200, etag(lead["version"]), LeadOut().dump(lead)

    @http("POST", LEAD + "/recycle", body=RecycleIn, response=LeadOut,
          summary="Recycle a disqualified or unconverted lead into nurture (lead.recycled)",
          tags=TAGS, responses={404: "No such lead", 409: "Converted, or nurtured already"})
    def recycle(self, request, id):
        data = json_body(request, RecycleIn())
        actor = actor_id(caller(request, self.config))
        lead, _ = self.store.change(id, lambda lead: editing.recycle(
            scope_of(request).check(lead, "lead"), data["reason"], utcnow(), actor))
        lead.pop("activities", None)
        return 200, etag(lead["version"]), LeadOut().dump(lead)

    @http("POST", LEAD + "/activities", body=ActivityIn, response=ActivityAdded, status=201,
          summary="Log a call, e-mail, meeting or note", tags=TAGS,
          responses={404: "No such lead"})
    def add_activity(self, request, id):
        data = json_body(request, ActivityIn())
        actor = actor_id(caller(request, self.config))
        scope = scope_of(request)
        added = {}

        def decide(lead):
            scope.check(lead, "lead")
            change, added["activity"] = domain.add_activity(lead, data, utcnow(), self.rules,
                                                            actor)
            return change

        lead, _ = self.store.change(id, decide)
        lead.pop("activities", None)
        return ActivityAdded().dump({"activity": added["activity"], "lead": lead})

    @http("POST", LEAD + "/status", body=StatusIn, response=LeadOut,
          summary="Move a lead: new → contacted → qualified | disqualified → converted",
          tags=TAGS, responses={404: "No such lead", 409: "Not allowed from this status"})
    def change_status(self, request, id):
        data = json_body(request, StatusIn())
        actor = actor_id(caller(request, self.config))
        scope = scope_of(request)
        lead, _ = self.store.change(id, lambda lead: domain.change_status(
            scope.check(lead, "lead"), data["status"], data.get("reason"), utcnow(), self.rules,
            actor, reason_text=data.get("reason_text")))
        return LeadOut().dump(lead)

    @http("POST", LEAD + "/convert", body=ConvertIn, response=LeadOut,
          summary="Convert a qualified lead (emits lead.converted for the deals service)",
          tags=TAGS, responses={404: "No such lead", 409: "Not qualified, or converted"})
    def convert(self, request, id):
        data = json_body(request, ConvertIn())
        actor = actor_id(caller(request, self.config))
        scope = scope_of(request)

        def converting(lead):
            return domain.convert(scope.check(lead, "lead"), data["amount"], data["currency"],
                                  utcnow(), actor, pipeline_id=data["pipeline_id"])

        # one read: refused before any account or contact is made, and the state the
        # conversion's conditional write starts from
        current = self.store.get(id)
        converting(current)
        links = self.store.link_conversion(
            current, frozenset(setting(self.config, "ACCOUNTS.free_mail_domains") or ()),
            utcnow(), actor)
        lead, change = self.store.change(id, lambda lead: accounts.converted(
            converting(lead), lead, *links), current=current,
            audit=self.audit_trail.carried(request, "convert", 200))
        if carries(change):
            self.audit_trail.carrying(request)
        return LeadOut().dump(lead)

    @http("POST", LEAD + "/assign", body=AssignIn, response=LeadOut,
          summary="A manager reassigns a lead to a rep or a queue", tags=TAGS,
          responses={403: "Managers only", 404: "No such lead", 409: "Lead is closed"})
    def assign(self, request, id):
        who = caller(request, self.config)
        scope = scope_of(request)
        data = json_body(request, AssignIn())
        people = directory(self.config)
        team = data["team"]
        if data["owner_id"] is not None:
            people.require_known(data["owner_id"])
            team = team or people.team_of(data["owner_id"])
        if scope.reach == TEAM and team != scope.team:
            raise Forbidden("A manager assigns leads within their own team.",
                            errors={"owner_id": [f"Not in team {scope.team!r}."]})
        target = Assignment(owner_id=data["owner_id"], team=team, queue=data["queue"],
                            rule="manual")
        lead, _ = self.store.reassign(id, lambda lead: domain.reassign(
            scope.check(lead, "lead"), target, actor_id(who)), data["owner_id"])
        return LeadOut().dump(lead)

    @http("POST", LEAD + "/erase", response=LeadOut,
          summary="Erase the lead's personal data on request (admins; repeatable; emits "
                  "lead.erased)", tags=TAGS,
          responses={403: "Admins only", 404: "No such lead"})
    def erase(self, request, id):
        who = caller(request, self.config)
        require_role(who, "admin", config=self.config)
        keep = setting(self.config, "ERASURE.keep_custom", []) or []
        lead, _ = self.store.erase(id, lambda lead: erasure.erase(
            lead, utcnow(), keep, actor_id(who)))
        if lead.get("contact_id"):  # the person the conversion made of the lead goes too
            contact, _ = self.store.change_record(CONTACTS, lead["contact_id"], lambda c: (
                accounts.erase_contact(c, utcnow(), actor_id(who), keep)))
            # on every request, as the lead's: a repeat completes what a crash stopped
            self.store.blank_record_buckets(CONTACTS, contact)
        lead.pop("activities", None)
        return LeadOut().dump(lead)

    # --- accounts and contacts (leads.accounts) --------------------------------------------

    @http("POST", "/api/v1/accounts", body=R.AccountIn, response=R.AccountOut, status=201,
          summary="Create an account (account.created)", tags=RECORDS,
          responses={409: "An account with this company name or domain exists (existing_id)"})
    def create_account(self, request):
        data = json_body(request, R.AccountIn())
        data["custom"] = self._typed(data.get("custom"), "account")
        who = caller(request, self.config)
        data["owner_id"] = data.get("owner_id") or actor_id(who)
        data["team"] = who.get("team")
        doc, events = accounts.new_account(str(uuid.uuid4()), data, utcnow(), actor_id(who))
        account, created = self.store.insert_record(ACCOUNTS, doc, events, actor_id(who))
        if not created:
            raise Conflict("An account with this company name or domain exists.",
                           existing_id=account["_id"])
        return 201, etag(account["version"]), R.AccountOut().dump(account)

    @http("GET", "/api/v1/accounts", query=R.RecordQuery, response=R.AccountPage,
          summary="Accounts, newest first, by cursor", tags=RECORDS)
    def list_accounts(self, request):
        args = query_args(request, R.RecordQuery())
        after = paging.after(args["cursor"]) if "cursor" in args else None
        items, more = self.store.page_records(ACCOUNTS, scope_of(request).query(),
                                              args["limit"], after)
        return R.AccountPage().dump({"items": items,
                                     "next_cursor": paging.next_cursor(items, more)})

    @http("GET", ACCOUNT, response=R.AccountOut, summary="An account", tags=RECORDS,
          responses={404: "No such account"})
    def get_account(self, request, id):
        account = scope_of(request).check(self.store.record(ACCOUNTS, id), "account")
        return 200, etag(account["version"]), R.AccountOut().dump(account)

    @http("PATCH", ACCOUNT, body=R.AccountPatch, response=R.AccountOut, tags=RECORDS,
          summary="Edit an account's custom fields at the version read (If-Match; "
                  "account.updated)",
          responses={404: "No such account", 409: "Stale If-Match, or merged",
                     428: "If-Match missing"})
    def patch_account(self, request, id):
        return self._patch_record(request, ACCOUNTS, id, R.AccountPatch(), R.AccountOut())

    @http("GET", ACCOUNT + "/timeline", query=R.RecordQuery, response=R.AccountTimeline,
          tags=RECORDS, summary="An account's timeline: creation, conversions, merges, "
                                "edits; oldest first, by cursor",
          responses={404: "No such account"})
    def account_timeline(self, request, id):
        args = query_args(request, R.RecordQuery())
        after = None
        if args.get("cursor"):
            after = decode_cursor(args["cursor"])
            if not isinstance(after, int) or isinstance(after, bool) or after < 1:
                raise QueryInvalid({"cursor": ["Not a valid cursor."]})
        account = scope_of(request).check(self.store.record(ACCOUNTS, id, full=True),
                                          "account")
        entries, more = self.store.record_activity_page(ACCOUNTS, account, after,
                                                        args["limit"])
        return R.AccountTimeline().dump({"id": id, "entries": entries, "next_cursor":
                                         encode_cursor(more) if more is not None else None})

    @http("POST", ACCOUNT + "/merge", body=R.MergeIn, response=R.AccountOut, tags=RECORDS,
          summary="Merge a duplicate account into another (its contacts and leads move; "
                  "account.merged)",
          responses={404: "No such account", 409: "Merged already, or into itself"})
    def merge_account(self, request, id):
        data = json_body(request, R.MergeIn())
        actor = actor_id(caller(request, self.config))
        survivor = self.store.record(ACCOUNTS, data["into"])
        if survivor is None or not scope_of(request).allows(survivor):
            # the path's account is what a 404 is about; an unknown target is a bad body
            raise Invalid("No such account to merge into.",
                          errors={"into": ["No such account."]})
        duplicate, _ = self.store.change_record(ACCOUNTS, id, lambda dup: accounts.merge(
            scope_of(request).check(dup, "account"), survivor, utcnow(), actor))
        self.store.move_to_account(id, survivor["_id"])
        return R.AccountOut().dump(duplicate)

    @http("POST", "/api/v1/contacts", body=R.ContactIn, response=R.ContactOut, status=201,
          summary="Add a contact to an account (contact.created)", tags=RECORDS,
          responses={409: "A contact with this e-mail or phone exists (existing_id)"})
    def create_contact(self, request):
        data = json_body(request, R.ContactIn())
        data["custom"] = self._typed(data.get("custom"), "contact")
        who = caller(request, self.config)
        account = self.store.find_record(ACCOUNTS, data["account_id"])
        if account is None or not scope_of(request).allows(account):
            raise Invalid("No such account.", errors={"account_id": ["No such account."]})
        data.update(owner_id=account.get("owner_id"), team=account.get("team"))
        doc, events = accounts.new_contact(str(uuid.uuid4()), account["_id"], data, utcnow(),
                                           actor_id(who))
        contact, created = self.store.insert_record(CONTACTS, doc, events, actor_id(who))
        if not created:
            raise Conflict("A contact with this e-mail or phone exists.",
                           existing_id=contact["_id"])
        return 201, etag(contact["version"]), R.ContactOut().dump(contact)

    @http("GET", "/api/v1/contacts", query=R.ContactQuery, response=R.ContactPage,
          summary="Contacts (of one account), newest first, by cursor", tags=RECORDS)
    def list_contacts(self, request):
        args = query_args(request, R.ContactQuery())
        after = paging.after(args["cursor"]) if "cursor" in args else None
        filters = {**scope_of(request).query(),
                   **({"account_id": args["account_id"]} if "account_id" in args else {})}
        items, more = self.store.page_records(CONTACTS, filters, args["limit"], after)
        return R.ContactPage().dump({"items": items,
                                     "next_cursor": paging.next_cursor(items, more)})

    @http("GET", CONTACT, response=R.ContactOut, summary="A contact", tags=RECORDS,
          responses={404: "No such contact"})
    def get_contact(self, request, id):
        contact = scope_of(request).check(self.store.record(CONTACTS, id), "contact")
        return 200, etag(contact["version"]), R.ContactOut().dump(contact)

    @http("PATCH", CONTACT, body=R.ContactPatch, response=R.ContactOut, tags=RECORDS,
          summary="Edit a contact's title and custom fields at the version read (If-Match; "
                  "contact.updated)",
          responses={404: "No such contact", 409: "Stale If-Match, or erased",
                     428: "If-Match missing"})
    def patch_contact(self, request, id):
        return self._patch_record(request, CONTACTS, id, R.ContactPatch(), R.ContactOut())

    def _patch_record(self, request, coll, _id, schema, out):
        entity = coll[:-1]
        expected = if_match(request)
        data = json_body(request, schema)
        if "custom" in data:
            data["custom"] = self._typed(data["custom"], entity)
        actor = actor_id(caller(request, self.config))
        record, _ = self.store.change_record(coll, _id, lambda current: accounts.edit(
            scope_of(request).check(current, entity), entity, data, utcnow(), actor),
            expected=expected)
        record.pop("activities", None)
        return 200, etag(record["version"]), out.dump(record)

    @http("GET", CONTACT + "/timeline", response=R.RecordTimeline, tags=RECORDS,
          summary="A contact's timeline with the activities of every lead that was theirs",
          responses={404: "No such contact"})
    def contact_timeline(self, request, id):
        contact = scope_of(request).check(self.store.record(CONTACTS, id, full=True),
                                          "contact")
        leads = [{**lead, "activities": self.store.activities(lead)}
                 for lead in (self.store.get(lead_id, full=True)
                              for lead_id in contact["lead_ids"] if self.store.exists(lead_id))]
        own = {"activities": self.store.record_activities(CONTACTS, contact)}
        return R.RecordTimeline().dump({"id": id, "entries": accounts.timeline(own, leads)})

    # --- typed custom fields of leads, accounts and contacts (kit.customfields) -----------

    @http("POST", "/api/v1/leads/custom-fields", body=CS.FieldIn, response=CS.FieldOut,
          status=201, tags=["custom fields"],
          summary="Define a typed custom field of leads (admins)",
          responses={403: "Not an admin", 409: "The key exists"})
    def create_lead_field(self, request):
        return self._define_field(request, "lead")

    @http("GET", "/api/v1/leads/custom-fields", response=CS.FieldList,
          tags=["custom fields"], summary="The custom fields of leads")
    def list_lead_fields(self, request):
        return CS.FieldList().dump({"items": list(self.store.field_defs("lead").values())})

    @http("POST", "/api/v1/accounts/custom-fields", body=CS.FieldIn, response=CS.FieldOut,
          status=201, tags=["custom fields"],
          summary="Define a typed custom field of accounts (admins)",
          responses={403: "Not an admin", 409: "The key exists"})
    def create_account_field(self, request):
        return self._define_field(request, "account")

    @http("GET", "/api/v1/accounts/custom-fields", response=CS.FieldList,
          tags=["custom fields"], summary="The custom fields of accounts")
    def list_account_fields(self, request):
        return CS.FieldList().dump({"items": list(self.store.field_defs("account").values())})

    @http("POST", "/api/v1/contacts/custom-fields", body=CS.FieldIn, response=CS.FieldOut,
          status=201, tags=["custom fields"],
          summary="Define a typed custom field of contacts (admins)",
          responses={403: "Not an admin", 409: "The key exists"})
    def create_contact_field(self, request):
        return self._define_field(request, "contact")

    @http("GET", "/api/v1/contacts/custom-fields", response=CS.FieldList,
          tags=["custom fields"], summary="The custom fields of contacts")
    def list_contact_fields(self, request):
        return CS.FieldList().dump({"items": list(self.store.field_defs("contact").values())})

    def _define_field(self, request, entity):
        who = caller(request, self.config)
        require_role(who, "admin", config=self.config)
        data = json_body(request, CS.FieldIn())
        return 201, CS.FieldOut().dump(self.store.insert_field(
            CF.stored(data, entity, utcnow(), actor_id(who))))

    def _typed(self, custom, entity="lead"):
        """Custom values checked against the entity's definitions (400 naming each bad one);
        a record without custom values needs no definitions read."""
        if not custom:
            return {}
        values, errors = CF.check_values(self.store.field_defs(entity), custom)
        if errors:
            raise Invalid("Custom fields do not match their definitions.",
                          errors={"custom": errors})
        return values

    @staticmethod
    def extend_openapi(doc, container):
        """/openapi.json shows the custom fields of leads, accounts and contacts as admins
        defined them."""
        store = CS.store_of(container)
        for entity, schemas in (("lead", ("LeadIn", "LeadPatch")),
                                ("account", ("AccountIn", "AccountPatch")),
                                ("contact", ("ContactIn", "ContactPatch"))):
            doc = CS.describe(doc, store.field_defs(entity), schemas)
        return doc

    # --- follow-ups ------------------------------------------------------------------------

    @http("POST", LEAD + "/tasks", body=TaskIn, response=TaskOut, status=201,
          summary="Schedule a follow-up (lead.followup_due fires once when due)", tags=TAGS,
          responses={404: "No such lead", 409: "Lead is closed"})
    def add_task(self, request, id):
        data = json_body(request, TaskIn())
        task = domain.new_task(self._lead(request, id), data["due_at"], data.get("note"),
                               str(uuid.uuid4()), utcnow(),
                               actor_id(caller(request, self.config)))
        return TaskOut().dump(self.store.insert_task(task))

    @http("GET", LEAD + "/tasks", response=TaskList, summary="Follow-ups of a lead", tags=TAGS,
          responses={404: "No such lead"})
    def list_tasks(self, request, id):
        self._lead(request, id)
        return TaskList().dump({"items": self.store.tasks_of(id)})

    @http("POST", LEAD + "/tasks/<task_id>/<outcome>", response=TaskOut,
          summary="Complete or cancel a follow-up (outcome: complete | cancel)", tags=TAGS,
          responses={404: "No such lead, follow-up or outcome", 409: "Finished already"})
    def finish_task(self, request, id, task_id, outcome):
        if outcome not in FINISH:
            raise NotFound(f"No outcome {outcome!r}; use complete or cancel.")
        scope_of(request).check(self.store.get(id), "lead")
        actor = actor_id(caller(request, self.config))
        return TaskOut().dump(self.store.change_task(id, task_id, lambda task: activities.finish(
            task, FINISH[outcome], utcnow(), actor)))

    @config_timer("FOLLOWUP.check_interval_seconds", 15)
    def fire_followups(self):
        self.store.fire_due_tasks(utcnow(), actor=system_actor(self.name))

    @config_timer("SLA.check_interval_seconds", 15)
    def check_response_sla(self):
        self.store.fire_overdue(utcnow(), self.rules, actor=system_actor(self.name))

    @config_timer("CAPTURE.sweep_interval_seconds", 300)
    def sweep_rate_buckets(self):
        self.store.sweep_rate_buckets(utcnow())

    @config_timer("ASSIGNMENT.recount_interval_seconds", 300)
    def recount_open_leads(self):
        self.store.recount_reps()


def _csv_body(request, max_bytes):
    """The CSV's bytes, read no further than max_bytes (IMPORT.max_bytes, larger than the
    JSON limit), and the charset its type names."""
    if request.mimetype != "multipart/form-data":
        return read_body(request, max_bytes), request.mimetype_params.get("charset")
    too_large = PayloadTooLarge(f"The CSV may have at most {max_bytes} bytes "
                                "(IMPORT.max_bytes).", max_bytes=max_bytes)
    if request.content_length is not None and request.content_length > max_bytes:
        raise too_large
    # werkzeug's form parser enforces this on the parts as it reads them
    request.max_content_length = max_bytes
    try:
        upload = next(iter(request.files.values()), None)
    except RequestEntityTooLarge:
        raise too_large from None
    if upload is None:
        raise Invalid("Send the CSV as the body or as a multipart file.")
    return upload.read(), upload.mimetype_params.get("charset")
