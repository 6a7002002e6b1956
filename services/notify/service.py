"""Notify service: nameko entrypoints only; planning lives in the domain, sending in the
notifier and the channel modules, queries in the store."""
import html

from nameko.dependency_providers import Config
from werkzeug.wrappers import Response

from kit import paging
from kit.auth import actor_id, caller
from kit.catalog import PRODUCER
from kit.consumer import event_handler
from kit.errors import Invalid, NotFound
from kit.http import http, json_body, query_args
from kit.mongo import Store
from kit.ops import Operational
from kit.timers import config_timer
from notify import schemas as S
from notify.notifier import Notifier
from notify.permissions import PERMISSIONS
from notify.rules import as_dict, parse_rule
from notify.store import NotifyStore

TAGS = ["notifications"]
LINK_REFUSALS = {403: "The link was tampered with or its key retired",
                 410: "The link has expired"}


class NotifyService(Operational):
    name = "notify"
    permissions = PERMISSIONS

    store = Store(NotifyStore)
    notifier = Notifier()
    config = Config()

    # --- events the default rules name (each its own queue, as every consumer) -----------

    @event_handler("leads", "lead.assigned")
    def handle_leads_lead_assigned(self, event):
        self.notifier.on_event(self.store, event)

    @event_handler("leads", "lead.followup_due")
    def handle_leads_lead_followup_due(self, event):
        self.notifier.on_event(self.store, event)

    @event_handler("leads", "lead.response_overdue")
    def handle_leads_lead_response_overdue(self, event):
        self.notifier.on_event(self.store, event)

    @event_handler("deals", "deal.stalled")
    def handle_deals_deal_stalled(self, event):
        self.notifier.on_event(self.store, event)

    @event_handler("quotes", "quote.submitted")
    def handle_quotes_quote_submitted(self, event):
        self.notifier.on_event(self.store, event)

    @event_handler("quotes", "quote.sent")
    def handle_quotes_quote_sent(self, event):
        self.notifier.on_event(self.store, event)

    @event_handler("quotes", "contract.sent")
    def handle_quotes_contract_sent(self, event):
        self.notifier.on_event(self.store, event)

    @event_handler("support", "ticket.assigned")
    def handle_support_ticket_assigned(self, event):
        self.notifier.on_event(self.store, event)

    @event_handler("support", "ticket.sla_breached")
    def handle_support_ticket_sla_breached(self, event):
        self.notifier.on_event(self.store, event)

    @event_handler("support", "ticket.resolved")
    def handle_support_ticket_resolved(self, event):
        self.notifier.on_event(self.store, event)

    # The quotes and support services add these types to the catalog as they land: the
    # handlers subscribe once the catalog has them (a consumer of an unknown type would
    # dead-letter every message as malformed).
    if "contract.created" in PRODUCER:
        @event_handler(PRODUCER["contract.created"], "contract.created")
        def handle_contract_created(self, event):
            self.notifier.on_event(self.store, event)

    if "ticket.sla_warning" in PRODUCER:
        @event_handler(PRODUCER["ticket.sla_warning"], "ticket.sla_warning")
        def handle_ticket_sla_warning(self, event):
            self.notifier.on_event(self.store, event)

    # --- delivery ------------------------------------------------------------------------

    @config_timer("NOTIFY.delivery_interval_seconds", 2)
    def deliver_due(self):
        """Retries, the end of quiet hours and rate limits, and whatever an instance that
        died left claimed: each due notification claimed atomically, sent once."""
        self.notifier.deliver_due(self.store)

    # --- the delivery log ----------------------------------------------------------------

    @http("GET", "/api/v1/notifications", query=S.NotificationQuery,
          response=S.NotificationPage, tags=TAGS,
          summary="The delivery log: notifications filtered by one field, by cursor")
    def list_notifications(self, request):
        args = query_args(request, S.NotificationQuery())
        after = paging.after(args["cursor"]) if args.get("cursor") else None
        rows = self.store.find({k: args.get(k) for k in S.FILTERS}, args["limit"] + 1, after)
        page, more = rows[:args["limit"]], len(rows) > args["limit"]
        return S.NotificationPage().dump({"items": page,
                                          "next_cursor": paging.next_cursor(page, more)})

    @http("GET", "/api/v1/notifications/<id>", response=S.NotificationOut, tags=TAGS,
          summary="One notification with its delivery log",
          responses={404: "No such notification"})
    def get_notification(self, request, id):
        doc = self.store.get(id)
        if doc is None:
            raise NotFound(f"No notification {id}.")
        return S.NotificationOut().dump(doc)

    @http("GET", "/api/v1/rules", response=S.RuleList, tags=["rules"],
          summary="The notification rules in force (configured, and set by admins)")
    def list_rules(self, request):
        return S.RuleList().dump({"items": self._rules(fresh=True)})

    @http("PUT", "/api/v1/rules/<name>", body=S.RuleIn, response=S.RuleOut, tags=["rules"],
          summary="Set a rule (replaces the configured one of that name; enabled: false "
          "switches it off)", responses={400: "The rule names an unknown template, "
                                         "recipient or condition"})
    def put_rule(self, request, name):
        data = json_body(request, S.RuleIn())
        raw = {**data, "name": name}
        rule = parse_rule(raw, self.notifier.templates.templates)
        self.store.put_rule(name, {k: v for k, v in raw.items() if k != "name"},
                            actor_id(caller(request, self.config)), self.notifier.clock())
        self.notifier.rules(self.store, fresh=True)
        return S.RuleOut().dump({**as_dict(rule), "source": "admin"})

    @http("DELETE", "/api/v1/rules/<name>", status=204, tags=["rules"],
          summary="Remove a rule set by an admin (the configured one of that name, if any, "
          "applies again)", responses={404: "No rule of that name was set by an admin"})
    def delete_rule(self, request, name):
        if not self.store.delete_rule(name):
            raise NotFound(f"No rule {name!r} was set through the API.")
        self.notifier.rules(self.store, fresh=True)
        return 204, None

    def _rules(self, fresh=False):
        stored = self.store.stored_rules()
        return [{**as_dict(rule), "source": "admin" if rule.name in stored else "config"}
                for rule in self.notifier.rules(self.store, fresh=fresh)]

    @http("POST", "/api/v1/templates/<name>/preview", body=S.PreviewIn,
          response=S.PreviewOut, tags=["templates"],
          summary="Render a template with a sample event (its own, or the one given)",
          responses={404: "No such template", 400: "The template cannot render it"})
    def preview(self, request, name):
        data = json_body(request, S.PreviewIn())
        templates = self.notifier.templates
        if name not in templates.templates:
            raise NotFound(f"No template {name!r}.")
        event = data["event"] or templates.samples.get(name)
        if event is None:
            raise Invalid(f"Template {name!r} has no sample; give an event.",
                          errors={"event": ["Required for this template."]})
        doc = {"_id": "preview", "template": name, "recipient": "preview",
               "channel": "email", "recipient_name": data["recipient_name"],
               "locale": data["locale"] or templates.default_locale,
               "event": {"id": "preview", "type": event["type"], "time": None,
                         "subject": "preview", "data": event["data"]}}
        return {"template": name, **self.notifier.render(doc, data["links"])}

    # --- opt-out (signed links in every message) -----------------------------------------

    @http("GET", "/api/v1/unsubscribe/<token>", tags=["unsubscribe"], content="text/html",
          summary="The page an unsubscribe link opens (a button that confirms)",
          responses=LINK_REFUSALS)
    def unsubscribe_page(self, request, token):
        recipient, channel = self.notifier.unsubscribe_target(token)
        page = ("<!doctype html><meta charset=utf-8><title>Unsubscribe</title>"
                f"<p>Stop {html.escape(channel)} notifications to "
                f"{html.escape(recipient)}?</p><form method=post>"
                "<button>Unsubscribe / 退订</button></form>")
        return Response(page, content_type="text/html; charset=utf-8")

    @http("POST", "/api/v1/unsubscribe/<token>", response=S.UnsubscribeOut,
          tags=["unsubscribe"], summary="Opt out (signed link; also RFC 8058 one-click)",
          responses=LINK_REFUSALS)
    def unsubscribe(self, request, token):
        recipient, channel = self.notifier.unsubscribe_target(token)
        self.store.opt_out(recipient, channel, self.notifier.clock())
        return S.UnsubscribeOut().dump({"recipient": recipient, "channel": channel,
                                        "unsubscribed": True})
