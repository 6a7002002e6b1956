"""Deals service: nameko entrypoints only; rules live in the domain, queries in the store."""
import logging
import uuid

from nameko.dependency_providers import Config

from deals import activities as A
from deals import domain, leads_client, search
from deals import field_schemas as FS
from deals import fields as DF
from deals import forecast as F
from deals import pipelines as P
from deals import schemas as S
from deals import work_schemas as W
from deals.migrations import migrations as all_migrations
from deals.permissions import PERMISSIONS
from deals.store import DealsStore
from kit import activities, paging, prefixsearch
from kit import customfield_schemas as CS
from kit.auth import actor_id, caller, require_role, system_actor
from kit.config import setting
from kit.consumer import event_handler
from kit.errors import Conflict, Contention, DealflowError, Forbidden, Invalid, NotFound
from kit.fields import utcnow
from kit.http import QueryInvalid, decode_cursor, encode_cursor, http, json_body, query_args
from kit.migrations import Migrations
from kit.mongo import Store
from kit.ops import Operational
from kit.people import directory
from kit.permissions import ALL, scope_of
from kit.preconditions import check_version, etag, if_match
from kit.timers import config_timer
from kit.versioned import Stale, stale

log = logging.getLogger(__name__)

TAGS = ["deals"]
DEAL = "/api/v1/deals/<id>"
FINISH = {"complete": activities.COMPLETED, "cancel": activities.CANCELLED}
MOVE_ERRORS = {404: "No such deal", 409: "Stage gate not met, or the deal changed (stale "
               "If-Match)", 428: "If-Match missing"}


class DealsService(Operational):
    name = "deals"
    permissions = PERMISSIONS

    store = Store(DealsStore)
    migrations = Migrations(all_migrations)
    config = Config()

    # --- helpers (no rules: reading settings, loading, writing) ------------------------------

    def _day(self):
        return float(setting(self.config, "DEALS.day_seconds", 86400))

    def _actor(self, request):
        return actor_id(caller(request, self.config))

    def _event_actor(self, event):
        """Who caused a consumed event's effect: its person, else this service."""
        return event.get("actor") or system_actor(self.name)

    def _pipeline(self, pipeline_id, field="pipeline_id", fresh=False):
        pipeline = self.store.get_pipeline(pipeline_id, fresh=fresh)
        if pipeline is None:
            raise Invalid(f"No pipeline {pipeline_id!r}.",
                          errors={field: ["No such pipeline."]})
        return pipeline

    def _deal(self, request, deal_id):
        """The deal if the caller reaches it; another rep's deal is as absent as a missing
        one (404), as it is from their lists."""
        deal = self.store.get_deal(deal_id)
        if deal is None:
            raise NotFound(f"No deal {deal_id}.")
        return scope_of(request).check(deal, "deal")

    def _owner(self, request, owner_id):
        """The owner a user gives a deal, with its team: a known person, and within the
        caller's reach (a rep gives deals only to themselves, a manager to the team)."""
        scope, people = scope_of(request), directory(self.config)
        owner_id = owner_id or (None if scope.reach == ALL else scope.sub)
        people.require_known(owner_id)
        team = people.team_of(owner_id) if owner_id else None
        if not scope.allows({"owner_id": owner_id, "team": team}):
            raise Forbidden("This owner is outside your reach: a rep owns their own deals, "
                            "a manager gives deals to their team.",
                            errors={"owner_id": ["Outside your reach."]})
        return owner_id, team

    def _change(self, request, deal_id, decide):
        """A versioned change at the version the caller's If-Match names, of a deal the
        caller reaches."""
        expected = if_match(request)
        actor = self._actor(request)
        scope = scope_of(request)
        try:
            deal, _ = self.store.change(deal_id, lambda deal: decide(
                self.store.get_pipeline(deal["pipeline_id"]), scope.check(deal, "deal"),
                utcnow()), expected=expected, actor=actor)
        except domain.GateNotMet as gate:
            raise DF.labelled(gate, self.store.field_defs(DF.ENTITY)) from None
        return 200, etag(deal["version"]), S.DealOut().dump(deal)

    @staticmethod
    def extend_openapi(doc, container):
        """/openapi.json shows the deals' custom fields as admins defined them."""
        return CS.describe(doc, CS.store_of(container).field_defs(DF.ENTITY),
                           ("DealIn", "DealPatch"))

    # --- pipelines ---------------------------------------------------------------------------

    @http("GET", "/api/v1/pipelines", response=S.PipelineList, tags=["pipelines"],
          summary="List pipelines with their stages and gates")
    def list_pipelines(self, request):
        self.store.get_pipeline(P.DEFAULT_PIPELINE_ID)  # seeded even before the first deal
        return S.PipelineList().dump({"items": self.store.list_pipelines()})

    @http("POST", "/api/v1/pipelines", body=S.PipelineIn, response=S.PipelineOut, status=201,
          tags=["pipelines"], summary="Create a pipeline (admins)",
          responses={401: "No token", 403: "Not an admin"})
    def create_pipeline(self, request):
        require_role(caller(request, self.config),
                     *setting(self.config, "DEALS.pipeline_admin_roles", ["admin"]),
                     config=self.config)
        data = json_body(request, S.PipelineIn())
        doc = self.store.insert_pipeline({"_id": str(uuid.uuid4()), "name": data["name"],
                                          "stages": P.normalise(data["stages"]),
                                          "lost_reasons": P.reasons_in(data["lost_reasons"])})
        return 201, etag(doc["version"]), S.PipelineOut().dump(doc)

    @http("GET", "/api/v1/pipelines/<id>", response=S.PipelineOut, tags=["pipelines"],
          summary="One pipeline", responses={404: "No such pipeline"})
    def get_pipeline(self, request, id):
        doc = self.store.get_pipeline(id, fresh=True)
        if doc is None:
            raise NotFound(f"No pipeline {id}.")
        return 200, etag(doc["version"]), S.PipelineOut().dump(doc)

    @http("PUT", "/api/v1/pipelines/<id>", body=S.PipelineIn, response=S.PipelineOut,
          tags=["pipelines"], summary="Edit a pipeline's name, stages and gates (admins)",
          responses={404: "No such pipeline", 409: "Stale If-Match, or open deals sit in a "
                     "removed stage", 428: "If-Match missing"})
    def replace_pipeline(self, request, id):
        require_role(caller(request, self.config),
                     *setting(self.config, "DEALS.pipeline_admin_roles", ["admin"]),
                     config=self.config)
        expected = if_match(request)
        data = json_body(request, S.PipelineIn())
        current = self.store.get_pipeline(id, fresh=True)
        if current is None:
            raise NotFound(f"No pipeline {id}.")
        check_version(current, expected, "pipeline")
        stages = P.normalise(data["stages"])
        removed = P.removed_stages(current, stages)
        P.check_edit(removed, self.store.open_deals_in_stages(id, removed))
        doc = self.store.replace_pipeline(id, expected, data["name"], stages,
                                          lost_reasons=P.reasons_in(data["lost_reasons"]))
        if doc is None:
            raise stale(self.store.get_pipeline(id, fresh=True)["version"], expected,
                        "pipeline")
        return 200, etag(doc["version"]), S.PipelineOut().dump(doc)

    # --- deals -------------------------------------------------------------------------------

    @http("POST", "/api/v1/deals", body=S.DealIn, response=S.DealOut, status=201, tags=TAGS,
          summary="Open a deal", responses={409: "Stage gate not met, or the lead has a deal"})
    def create_deal(self, request):
        data = json_body(request, S.DealIn())
        data["custom"] = DF.checked(self.store.field_defs(DF.ENTITY), data["custom"])
        data["owner_id"], data["team"] = self._owner(request, data.get("owner_id"))
        pipeline = self._pipeline(data["pipeline_id"])
        deal_id = (domain.deal_id_for_lead(data["lead_id"]) if data["lead_id"]
                   else str(uuid.uuid4()))
        actor = self._actor(request)
        deal, events = domain.new_deal(pipeline, data, deal_id, utcnow(), actor=actor,
                                       day_seconds=self._day())
        if not self.store.insert_deal(deal, events, actor=actor):
            raise Conflict(f"Lead {data['lead_id']} already has a deal.", existing_id=deal_id)
        headers = {**etag(1), "Location": f"/api/v1/deals/{deal_id}"}
        return 201, headers, S.DealOut().dump(deal)

    @http("GET", "/api/v1/deals/<id>", response=S.DealOut, tags=TAGS, summary="One deal",
          responses={404: "No such deal"})
    def get_deal(self, request, id):
        deal = self._deal(request, id)
        return 200, etag(deal["version"]), S.DealOut().dump(deal)

    @http("GET", DEAL + "/history", query=S.HistoryQuery, response=S.HistoryPage, tags=TAGS,
          summary="The deal's whole history (moves, edits, facts from events), newest "
                  "first, by cursor", responses={404: "No such deal"})
    def deal_history(self, request, id):
        args = query_args(request, S.HistoryQuery())
        before = None
        if args.get("cursor"):
            before = decode_cursor(args["cursor"])
            if not isinstance(before, int) or isinstance(before, bool) or before < 1:
                raise QueryInvalid({"cursor": ["Not a valid cursor."]})
        self._deal(request, id)
        items, more = self.store.history_page(id, before, args["limit"])
        return S.HistoryPage().dump({"deal_id": id, "items": items, "next_cursor":
                                     encode_cursor(more) if more is not None else None})

    @http("GET", "/api/v1/deals/search", query=S.DealSearchQuery, response=S.DealPage,
          tags=TAGS, summary="Deals whose name or account starts with q (normalised), "
          "filtered, in the matched key's order, by cursor")
    def search_deals(self, request):
        args = query_args(request, S.DealSearchQuery())
        searched = search.prefixes(args["q"], args["by"])
        filters = prefixsearch.scoped({k: args[k] for k in (
            "account_id", "owner_id", "pipeline_id", "stage", "status") if k in args},
            scope_of(request).query())
        if filters is None:  # a filter outside the caller's reach
            return S.DealPage().dump({"items": [], "next_cursor": None})
        position = (prefixsearch.position(decode_cursor(args["cursor"]))
                    if "cursor" in args else None)
        streams = self.store.search(searched, filters, position, args["limit"])
        rows, after = prefixsearch.merge(streams, searched, args["limit"])
        return S.DealPage().dump({"items": rows, "next_cursor": encode_cursor(list(after))
                                  if after is not None else None})

    @http("GET", "/api/v1/deals", query=S.DealQuery, response=S.DealPage, tags=TAGS,
          summary="Deals, filtered (lead_id finds the deal a lead became), by cursor")
    def list_deals(self, request):
        args = query_args(request, S.DealQuery())
        after = paging.after(args["cursor"]) if args.get("cursor") else None
        filters = {k: args.get(k) for k in ("lead_id", "account_id", "owner_id",
                                             "pipeline_id", "stage", "status")}
        reach = scope_of(request).query()
        if any(filters.get(k) not in (None, v) for k, v in reach.items()):
            return S.DealPage().dump({"items": [], "next_cursor": None})  # nothing in reach
        filters.update(reach)
        rows = self.store.find_deals(filters, args["limit"] + 1, after)
        page, more = rows[:args["limit"]], len(rows) > args["limit"]
        return S.DealPage().dump({"items": page, "next_cursor": paging.next_cursor(page, more)})

    @http("PATCH", "/api/v1/deals/<id>", body=S.DealPatch, response=S.DealOut, tags=TAGS,
          summary="Edit fields, custom fields and checklist ticks (deal.updated)",
          responses={**MOVE_ERRORS, 409: "The deal changed (stale If-Match)"})
    def patch_deal(self, request, id):
        data = json_body(request, S.DealPatch())
        if "custom" in data:
            data["custom"] = DF.checked(self.store.field_defs(DF.ENTITY), data["custom"])
        if "owner_id" in data:
            data["owner_id"], data["team"] = self._owner(request, data["owner_id"])
        actor = self._actor(request)
        return self._change(request, id, lambda pipeline, deal, now: domain.update(
            pipeline, deal, data, now, actor=actor, day_seconds=self._day()))

    @http("POST", "/api/v1/deals/<id>/stage", body=S.StageMove, response=S.DealOut,
          tags=TAGS, summary="Move to another open stage (gates apply)",
          responses=MOVE_ERRORS)
    def move_stage(self, request, id):
        data = json_body(request, S.StageMove())
        actor = self._actor(request)
        return self._change(request, id, lambda pipeline, deal, now: domain.move(
            pipeline, deal, data["stage"], now, actor=actor, day_seconds=self._day()))

    @http("POST", "/api/v1/deals/<id>/won", response=S.DealOut, tags=TAGS,
          summary="Close as won (deal.stage_changed, deal.won)", responses=MOVE_ERRORS)
    def mark_won(self, request, id):
        actor = self._actor(request)
        return self._change(request, id, lambda pipeline, deal, now: domain.win(
            pipeline, deal, now, actor=actor))

    @http("POST", "/api/v1/deals/<id>/lost", body=S.LostIn, response=S.DealOut, tags=TAGS,
          summary="Close as lost with a reason (deal.stage_changed, deal.lost)",
          responses=MOVE_ERRORS)
    def mark_lost(self, request, id):
        data = json_body(request, S.LostIn())
        actor = self._actor(request)
        return self._change(request, id, lambda pipeline, deal, now: domain.lose(
            pipeline, deal, data["reason"], now, actor=actor, reason_text=data["reason_text"]))

    @http("POST", "/api/v1/deals/<id>/reopen", body=S.ReopenIn, response=S.DealOut,
          tags=TAGS, summary="Reopen a won or lost deal", responses=MOVE_ERRORS)
    def reopen(self, request, id):
        data = json_body(request, S.ReopenIn())
        actor = self._actor(request)
        return self._change(request, id, lambda pipeline, deal, now: domain.reopen(
            pipeline, deal, now, data["stage"], actor=actor, day_seconds=self._day()))

    # --- activities and tasks (deals.activities) ----------------------------------------------

    @http("POST", DEAL + "/activities", body=W.ActivityIn, response=W.ActivityOut, status=201,
          tags=TAGS, summary="Log a call, e-mail, meeting or note (deal.activity_logged)",
          responses={404: "No such deal"})
    def log_activity(self, request, id):
        data = json_body(request, W.ActivityIn())
        actor = self._actor(request)
        deal = self._deal(request, id)
        doc, events = A.log(deal, data, str(uuid.uuid4()), utcnow(), actor)
        self.store.insert_activity(doc, events, actor=actor)
        self.store.change(id, lambda deal: A.worked_on(
            self.store.get_pipeline(deal["pipeline_id"]), deal, doc["at"],
            day_seconds=self._day()))
        return 201, W.ActivityOut().dump({**doc, "id": doc["_id"], "source": "deal"})

    @http("GET", DEAL + "/timeline", response=W.DealTimeline, tags=TAGS,
          summary="The deal's activities with its lead's timeline, in time order",
          responses={404: "No such deal"})
    def deal_timeline(self, request, id):
        deal = self._deal(request, id)
        lead_entries, missing = [], None
        if deal.get("lead_id"):
            lead_entries, missing = leads_client.lead_timeline(
                setting(self.config, "LEADS.url", "http://127.0.0.1:8001"), deal["lead_id"],
                request.headers.get("Authorization"),
                float(setting(self.config, "LEADS.timeout_seconds", 3)))
        limit = int(setting(self.config, "TASKS.timeline_limit", 1000))
        return W.DealTimeline().dump({
            "deal_id": id, "lead_id": deal.get("lead_id"), "lead_timeline_missing": missing,
            "entries": A.timeline(self.store.activities_of(id, limit), lead_entries)})

    @http("POST", DEAL + "/tasks", body=W.TaskIn, response=W.TaskOut, status=201, tags=TAGS,
          summary="Add a task (deal.task_due fires once when it falls due)",
          responses={404: "No such deal", 409: "The deal is closed"})
    def add_task(self, request, id):
        data = json_body(request, W.TaskIn())
        deal = self._deal(request, id)
        task = A.new_task(deal, data, str(uuid.uuid4()), utcnow(), self._actor(request))
        return 201, W.TaskOut().dump(self.store.insert_task(task))

    @http("GET", DEAL + "/tasks", response=W.TaskList, tags=TAGS, summary="A deal's tasks",
          responses={404: "No such deal"})
    def list_tasks(self, request, id):
        self._deal(request, id)
        return W.TaskList().dump({"items": self.store.tasks_of(id)})

    @http("POST", DEAL + "/tasks/<task_id>/<outcome>", response=W.TaskOut, tags=TAGS,
          summary="Complete or cancel a task (outcome: complete | cancel)",
          responses={404: "No such deal, task or outcome", 409: "Finished already"})
    def finish_task(self, request, id, task_id, outcome):
        if outcome not in FINISH:
            raise NotFound(f"No outcome {outcome!r}; use complete or cancel.")
        self._deal(request, id)
        actor = self._actor(request)
        return W.TaskOut().dump(self.store.change_task(id, task_id, lambda task: (
            activities.finish(task, FINISH[outcome], utcnow(), actor))))

    @config_timer("TASKS.check_interval_seconds", 15)
    def fire_due_tasks(self):
        now = utcnow()
        self.store.fire_due_tasks(now, lambda task, deal: A.task_due(task, deal, now),
                                  int(setting(self.config, "TASKS.batch_size", 200)))

    # --- custom fields (deals.fields, kit.customfields) ---------------------------------------

    @http("POST", "/api/v1/deals/custom-fields", body=FS.FieldIn, response=FS.FieldOut,
          status=201, tags=["custom fields"],
          summary="Define a typed custom field of deals (admins); required_from adds it to "
                  "those stages' gates",
          responses={403: "Not an admin", 409: "The key exists, or a pipeline changed"})
    def create_field(self, request):
        require_role(caller(request, self.config),
                     *setting(self.config, "DEALS.pipeline_admin_roles", ["admin"]),
                     config=self.config)
        data = json_body(request, FS.FieldIn())
        doc = DF.definition(data, utcnow(), self._actor(request))
        gates = []
        for ref in data["required_from"]:  # checked before anything is written
            pipeline = self._pipeline(ref["pipeline_id"], "required_from", fresh=True)
            gates.append((pipeline, DF.gate_with(pipeline, ref["stage"], doc["key"])))
        self.store.insert_field(doc)
        for pipeline, stages in gates:
            if stages is not None and self.store.replace_pipeline(
                    pipeline["_id"], pipeline["version"], pipeline["name"], stages) is None:
                raise Conflict(f"Pipeline {pipeline['_id']} changed meanwhile; require the "
                               "field there again by editing the pipeline.")
        return 201, FS.FieldOut().dump(self._field_out(doc))

    @http("GET", "/api/v1/deals/custom-fields", response=FS.FieldList, tags=["custom fields"],
          summary="The custom fields of deals, with the stages whose gates require them")
    def list_fields(self, request):
        return FS.FieldList().dump({"items": [
            self._field_out(d) for d in self.store.field_defs(DF.ENTITY).values()]})

    def _field_out(self, doc):
        return {**doc, "required_from": DF.required_from(self.store.list_pipelines(),
                                                         doc["key"])}

    # --- history (admins) --------------------------------------------------------------------

    @http("POST", "/api/v1/deals/history", body=S.HistoryIn, response=S.HistoryOut,
          tags=TAGS, summary="Record deals' past moves, edits, wins and losses at their "
          "times (admins; seeding and migrations)",
          responses={401: "No token", 403: "Not an admin"})
    def record_history(self, request):
        who = caller(request, self.config)
        require_role(who, *setting(self.config, "DEALS.history_roles", ["admin"]),
                     config=self.config)
        data = json_body(request, S.HistoryIn())
        pipelines, now = {}, utcnow()

        def pipeline_of(deal):
            if deal["pipeline_id"] not in pipelines:
                pipelines[deal["pipeline_id"]] = self.store.get_pipeline(deal["pipeline_id"])
            return pipelines[deal["pipeline_id"]]

        outcomes = [self._record(item, pipeline_of, now, actor_id(who))
                    for item in data["items"]]
        return S.HistoryOut().dump({"items": outcomes})

    def _record(self, item, pipeline_of, now, actor):
        deal_id = domain.history_target(item["deal_id"])
        outcome = {"deal_id": deal_id, "version": None, "error": None}
        try:
            deal, _ = self.store.change(deal_id, lambda deal: domain.replay(
                pipeline_of(deal), deal, item["steps"], now, actor=actor,
                day_seconds=self._day()), expected=item["version"], actor=actor)
        except Stale as exc:
            return {**outcome, "outcome": "stale", "version": exc.extra.get("current_version")}
        except NotFound:
            return {**outcome, "outcome": "not_found"}
        except DealflowError as exc:
            return {**outcome, "outcome": "refused", "error": {
                "title": exc.title, "detail": exc.detail, **exc.extra}}
        return {**outcome, "outcome": "applied", "version": deal["version"]}

    # --- forecast ----------------------------------------------------------------------------

    @http("GET", "/api/v1/forecast", query=S.ForecastQuery, response=S.ForecastOut,
          tags=["forecast"], summary="Weighted and best-case amounts per close period, "
          "owner and currency")
    def forecast(self, request):
        args = query_args(request, S.ForecastQuery())
        filters = {k: args.get(k) for k in ("pipeline_id", "owner_id", "currency")}
        reach = scope_of(request).query()
        if any(filters.get(k) not in (None, v) for k, v in reach.items()):
            return S.ForecastOut().dump(F.forecast([], args["period"]))
        deals = self.store.open_deals({**filters, **reach}, args.get("close_from"),
                                      args.get("close_to"))
        return S.ForecastOut().dump(F.forecast(deals, args["period"]))

    # --- events from other services ----------------------------------------------------------

    @event_handler("leads", "lead.converted")
    def handle_leads_lead_converted(self, event):
        lead = event["data"]
        # the pipeline the conversion asks for, else (none, or unknown here) the default
        pipeline = (lead.get("pipeline_id") and self.store.get_pipeline(lead["pipeline_id"])
                    or self.store.get_pipeline(P.DEFAULT_PIPELINE_ID))
        # the deal starts when its lead converted (a historical import's past time)
        opened = domain.opened_at(lead, utcnow())
        deal, events = domain.new_deal(
            pipeline, {**domain.deal_from_lead(lead),
                       "team": directory(self.config).team_of(lead.get("owner_id"))},
            domain.deal_id_for_lead(lead["lead_id"]),
            opened, actor=self._event_actor(event), day_seconds=self._day())
        # False: the lead's deal exists (a redelivery, or opened with its lead_id before).
        if self.store.insert_deal(deal, events, actor=self._event_actor(event),
                                  correlationid=event.get("correlationid") or event["id"]):
            return
        self.store.change(deal["_id"], lambda existing: domain.adopt_conversion(
            self.store.get_pipeline(existing["pipeline_id"]), existing, lead, utcnow(),
            actor=self._event_actor(event), day_seconds=self._day()),
            actor=self._event_actor(event), event_id=event["id"],
            correlationid=event.get("correlationid") or event["id"])

    @event_handler("leads", "lead.erased")
    def handle_leads_lead_erased(self, event):
        lead_id = event["data"]["lead_id"]
        for deal_id in self.store.deal_ids_of_lead(lead_id):
            self.store.change(deal_id, lambda deal: domain.erase_contact(
                deal, lead_id, utcnow(), actor=event.get("actor")),
                actor=event.get("actor"), event_id=event["id"],
                correlationid=event.get("correlationid") or event["id"])

    @event_handler("quotes", "quote.accepted")
    def handle_quotes_quote_accepted(self, event):
        quote, actor = event["data"], self._event_actor(event)
        self.store.change(quote["deal_id"], lambda deal: domain.accept_quote(
            self.store.get_pipeline(deal["pipeline_id"]), deal, quote, utcnow(),
            actor=actor, day_seconds=self._day()), actor=actor,
            event_id=event["id"], correlationid=event.get("correlationid") or event["id"])

    @event_handler("quotes", "contract.signed")
    def handle_quotes_contract_signed(self, event):
        contract = event["data"]
        self.store.change(contract["deal_id"], lambda deal: domain.sign_contract(
            self.store.get_pipeline(deal["pipeline_id"]), deal, contract, utcnow(),
            actor=event.get("actor"), day_seconds=self._day()), actor=event.get("actor"),
            event_id=event["id"], correlationid=event.get("correlationid") or event["id"])

    @event_handler("quotes", "payment.received")
    def handle_quotes_payment_received(self, event):
        payment = event["data"]
        self.store.change(payment["deal_id"], lambda deal: domain.record_payment(
            self.store.get_pipeline(deal["pipeline_id"]), deal, payment, utcnow(),
            actor=event.get("actor"), day_seconds=self._day()), actor=event.get("actor"),
            event_id=event["id"], correlationid=event.get("correlationid") or event["id"])

    # --- timers ------------------------------------------------------------------------------

    @config_timer("DEALS.stall_check_interval_seconds", 60)
    def mark_stalled(self):
        """deal.stalled once per stall: the versioned write is the claim, so of N
        instances that see the same due deal exactly one writes (the others read it
        stalled and find nothing to do)."""
        now, day = utcnow(), self._day()
        pipelines = {}

        def pipeline_of(deal):
            if deal["pipeline_id"] not in pipelines:
                pipelines[deal["pipeline_id"]] = self.store.get_pipeline(deal["pipeline_id"])
            return pipelines[deal["pipeline_id"]]

        batch = int(setting(self.config, "DEALS.stall_batch_size", 200))
        for doc in self.store.due_stalls(now, batch):
            try:
                self.store.change(doc["_id"], lambda deal: domain.stall(
                    pipeline_of(deal), deal, now, day_seconds=day), current=doc,
                    actor=system_actor(self.name))
            except Contention:
                log.info("deal %s kept changing; its stall waits for the next pass", doc["_id"])
