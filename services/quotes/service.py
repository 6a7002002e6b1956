"""Quotes service: nameko entrypoints only; rules live in the domain, queries in the store."""
import datetime as dt
import logging
import uuid

from nameko.dependency_providers import Config
from prometheus_client import Gauge
from werkzeug.wrappers import Response

from kit import paging
from kit.auth import actor_id, caller
from kit.batches import batch_event_handler
from kit.config import setting
from kit.consumer import event_handler
from kit.contacts import contact_of
from kit.errors import Conflict, Contention, Forbidden, NotFound, PreconditionRequired
from kit.fields import utcnow
from kit.http import http, json_body, query_args
from kit.links import LinkKeys
from kit.mongo import Store
from kit.ops import Operational
from kit.people import directory
from kit.permissions import OWN, scope_of
from kit.preconditions import if_match
from kit.prom import Metrics
from kit.timers import config_timer
from kit.versioned import stale
from quotes import contracts, dealview, domain, printing
from quotes import schemas as S
from quotes.permissions import PERMISSIONS
from quotes.rendering import Renderer
from quotes.store import QuotesStore, etag

log = logging.getLogger(__name__)
_gauges = {}

TAGS = ["quotes"]
QUOTE_PURPOSE = "quote"
CONTRACT_PURPOSE = "contract"
ACTION_ERRORS = {404: "No such quote", 409: "Not allowed in the quote's status (the "
                 "problem names the allowed actions), or a stale If-Match"}
PUBLIC_ERRORS = {403: "The link is altered, expired or replaced", 404: "No such quote",
                 409: "The link was used already, or the quote is no longer open"}


def _etag(version):
    return {"ETag": f'"{version}"'}


def _if_match(request):
    """The ETag an optional If-Match names (None without one)."""
    return if_match(request, required=False)


class QuotesService(Operational):
    name = "quotes"
    permissions = PERMISSIONS

    store = Store(QuotesStore)
    config = Config()
    links = LinkKeys()
    renderer = Renderer()
    registry = Metrics()

    # --- helpers (no rules: reading settings, loading, writing) ------------------------------

    def _setting(self, key, default=None):
        return setting(self.config, f"QUOTES.{key}", default)

    def _tax_rates(self):
        return tuple(int(r) for r in self._setting("tax_rates", [13, 9, 6, 0]))

    def _quote(self, quote_id, request=None):
        """The quote, or 404 when there is none or it lies outside the caller's reach."""
        quote = self.store.get_quote(quote_id)
        if quote is None or (request is not None and not scope_of(request).allows(quote)):
            raise NotFound(f"No quote {quote_id}.")
        return quote

    def _in_scope(self, request, doc, what):
        if not scope_of(request).allows(doc):
            raise NotFound(f"No {what} {doc['_id']}.")
        return doc

    def _out(self, quote, status=200):
        return status, _etag(etag(quote)), S.QuoteOut().dump(quote)

    def _change(self, request, quote_id, decide, *, actor=None):
        quote, _ = self.store.change_quote(
            quote_id, lambda quote: decide(self._in_scope(request, quote, "quote")),
            expected=_if_match(request), actor=actor)
        return self._out(quote)

    def _products_for(self, lines):
        return self.store.products([line["product_code"] for line in lines
                                    if line.get("product_code")])

    def _link(self, quote):
        """The customer's link of a sent quote (the same token each time it is asked for,
        while the signing key stays current: its payload does not change)."""
        token = self.links.sign(QUOTE_PURPOSE, quote["_id"], quote["link_expires_at"],
                                     data={"v": quote["quote_version"]},
                                     link_id=quote["link_id"])
        base = self._setting("public_base_url", "").rstrip("/")
        return {"url": f"{base}/api/v1/public/quotes?token={token}", "token": token,
                "expires_at": quote["link_expires_at"]}

    def _verified(self, token, now):
        claims = self.links.verify(token, QUOTE_PURPOSE, now)
        return {"quote_id": claims.subject, "link_id": claims.link_id,
                "version": claims.data.get("v")}

    def _verified_contract(self, token, now):
        claims = self.links.verify(token, CONTRACT_PURPOSE, now)
        return {"contract_id": claims.subject, "link_id": claims.link_id}

    def _contract(self, contract_id, request=None):
        contract = self.store.get_contract(contract_id)
        if contract is None or (request is not None and
                                not scope_of(request).allows(contract)):
            raise NotFound(f"No contract {contract_id}.")
        return contract

    def _contract_out(self, contract, status=200, headers=None):
        return status, {**_etag(etag(contract)), **(headers or {})}, \
            S.ContractOut().dump(contract)

    def _contract_link(self, contract):
        token = self.links.sign(CONTRACT_PURPOSE, contract["_id"],
                                     contract["link_expires_at"], link_id=contract["link_id"])
        base = self._setting("public_base_url", "").rstrip("/")
        return {"url": f"{base}/api/v1/public/contracts?token={token}", "token": token,
                "expires_at": contract["link_expires_at"]}

    def _contract_pdf(self, contract):
        company, locale = self._company()
        return self.renderer.contract_pdf(contract, company, locale)

    def _company(self):
        company = dict(setting(self.config, "COMPANY") or {})
        return company, company.pop("locale", "zh-CN")

    # --- price book (admins) -----------------------------------------------------------------

    @http("POST", "/api/v1/products", body=S.ProductIn, response=S.ProductOut, status=201,
          tags=["price book"], summary="Add a product to the price book (admins)",
          responses={401: "No token", 403: "Not an admin", 409: "The code exists"})
    def create_product(self, request):
        data = json_body(request, S.ProductIn())
        product = domain.product(data, self._tax_rates())
        doc = self.store.insert_product({"_id": data["code"], **product})
        if doc is None:
            raise Conflict(f"Product {data['code']} exists already; PUT changes it.")
        return 201, _etag(doc["version"]), S.ProductOut().dump(doc)

    @http("GET", "/api/v1/products", query=S.ProductQuery, response=S.ProductPage,
          tags=["price book"], summary="The price book, by cursor")
    def list_products(self, request):
        args = query_args(request, S.ProductQuery())
        after = paging.after(args["cursor"]) if args.get("cursor") else None
        rows = self.store.product_page(args["limit"] + 1, after)
        page, more = rows[:args["limit"]], len(rows) > args["limit"]
        return S.ProductPage().dump({"items": page,
                                     "next_cursor": paging.next_cursor(page, more)})

    @http("GET", "/api/v1/products/<code>", response=S.ProductOut, tags=["price book"],
          summary="One product", responses={404: "No such product"})
    def get_product(self, request, code):
        doc = self.store.get_product(code)
        if doc is None:
            raise NotFound(f"No product {code}.")
        return 200, _etag(doc["version"]), S.ProductOut().dump(doc)

    @http("PUT", "/api/v1/products/<code>", body=S.ProductPut, response=S.ProductOut,
          tags=["price book"], summary="Change a product (admins); quotes keep the prices "
          "they copied", responses={404: "No such product", 409: "Stale If-Match",
                                    428: "If-Match missing"})
    def replace_product(self, request, code):
        expected = _if_match(request)
        if expected is None:
            raise PreconditionRequired("Changing a product needs an If-Match header with "
                                       'the ETag you read, e.g. If-Match: "1".')
        data = json_body(request, S.ProductPut())
        values = domain.product(data, self._tax_rates())
        doc = self.store.replace_product(code, expected, values)
        if doc is None:
            current = self.store.get_product(code)
            if current is None:
                raise NotFound(f"No product {code}.")
            raise stale(current["version"], expected, "product")
        return 200, _etag(doc["version"]), S.ProductOut().dump(doc)

    # --- quotes ------------------------------------------------------------------------------

    @http("POST", "/api/v1/quotes", body=S.QuoteIn, response=S.QuoteOut, status=201,
          tags=TAGS, summary="Draft a quote for an open deal (quote.created)",
          responses={409: "Unknown, closed or lost deal"})
    def create_quote(self, request):
        data = json_body(request, S.QuoteIn())
        actor = actor_id(caller(request, self.config))
        if scope_of(request).reach == OWN:  # a rep's quotes are their own
            if data.get("owner_id") not in (None, actor):
                raise Forbidden("A rep owns their own quotes: leave owner_id out or give "
                                "your own.", errors={"owner_id": ["Outside your reach."]})
            data["owner_id"] = actor
        else:  # an owner someone else gives must be a person the directory knows
            directory(self.config).require_known(data.get("owner_id"))
        quote, events = domain.new_quote(
            data, self.store.get_deal(data["deal_id"]), self._products_for(data["lines"]),
            utcnow(), actor=actor, tax_rates=self._tax_rates())
        quote = self.store.insert_quote(quote, events, actor=actor)
        headers = {**_etag(etag(quote)), "Location": f"/api/v1/quotes/{quote['_id']}"}
        return 201, headers, S.QuoteOut().dump(quote)

    @http("GET", "/api/v1/quotes/<id>", response=S.QuoteOut, tags=TAGS, summary="One quote",
          responses={404: "No such quote"})
    def get_quote(self, request, id):
        return self._out(self._quote(id, request))

    @http("GET", "/api/v1/quotes", query=S.QuoteQuery, response=S.QuotePage, tags=TAGS,
          summary="Quotes oldest first, by cursor: a deal's, those at a status (submitted: "
          "awaiting approval), or all a caller reaches")
    def list_quotes(self, request):
        return S.QuotePage().dump(self._page(request, S.QuoteQuery(), self.store.quotes_page))

    def _page(self, request, schema, read):
        args = query_args(request, schema)
        after = paging.after(args["cursor"]) if args.get("cursor") else None
        filters = {k: args[k] for k in ("deal_id", "status") if k in args}
        rows = read(filters, args["limit"] + 1, after, scope_of(request).query())
        page, more = rows[:args["limit"]], len(rows) > args["limit"]
        return {"items": page, "next_cursor": paging.next_cursor(page, more)}

    @http("PATCH", "/api/v1/quotes/<id>", body=S.QuotePatch, response=S.QuoteOut, tags=TAGS,
          summary="Edit a draft (lines are priced again from the price book)",
          responses=ACTION_ERRORS)
    def edit_quote(self, request, id):
        data = json_body(request, S.QuotePatch())
        products = self._products_for(data.get("lines") or self._quote(id, request)["lines"])
        return self._change(request, id, lambda quote: domain.edit(
            quote, data, products, utcnow(), tax_rates=self._tax_rates()))

    @http("POST", "/api/v1/quotes/<id>/submit", response=S.QuoteOut, tags=TAGS,
          summary="Submit for approval (quote.submitted; quote.approved when no tier "
          "applies)", responses=ACTION_ERRORS)
    def submit(self, request, id):
        actor = actor_id(caller(request, self.config))
        rules = self._setting("approvals", [])
        return self._change(request, id, lambda quote: domain.submit(
            quote, rules, utcnow(), actor=actor))

    @http("POST", "/api/v1/quotes/<id>/approve", body=S.ApproveIn, response=S.QuoteOut,
          tags=TAGS, summary="Approve one pending tier (quote.approved after the last)",
          responses={**ACTION_ERRORS, 401: "No token", 403: "Own quote, or no role for a "
                     "pending tier"})
    def approve(self, request, id):
        data = json_body(request, S.ApproveIn())
        who = caller(request, self.config)
        return self._change(request, id, lambda quote: domain.approve(
            quote, who, utcnow(), tier=data["tier"], reason=data["reason"]))

    @http("POST", "/api/v1/quotes/<id>/reject", body=S.ReasonIn, response=S.QuoteOut,
          tags=TAGS, summary="Reject with a reason (quote.rejected)",
          responses={**ACTION_ERRORS, 401: "No token", 403: "Own quote, or no role"})
    def reject(self, request, id):
        data = json_body(request, S.ReasonIn())
        who = caller(request, self.config)
        return self._change(request, id, lambda quote: domain.reject(
            quote, who, data["reason"], utcnow()))

    @http("POST", "/api/v1/quotes/<id>/send", response=S.SentOut, tags=TAGS,
          summary="Send an approved quote: immutable from now, answered through the signed "
          "link returned (quote.sent)", responses=ACTION_ERRORS)
    def send(self, request, id):
        actor = actor_id(caller(request, self.config))
        link_id = str(uuid.uuid4())
        quote, _ = self.store.change_quote(id, lambda quote: domain.send(
            self._in_scope(request, quote, "quote"), self.store.get_deal(quote["deal_id"]),
            link_id, utcnow(), actor=actor), expected=_if_match(request), actor=actor)
        return 200, _etag(etag(quote)), S.SentOut().dump(
            {"quote": quote, "link": self._link(quote)})

    @http("GET", "/api/v1/quotes/<id>/link", response=S.LinkOut, tags=TAGS,
          summary="The customer's link of a sent quote (for whoever sends it on)",
          responses={404: "No such quote", 409: "The quote is not sent"})
    def get_link(self, request, id):
        quote = self._quote(id, request)
        if quote["status"] != "sent":
            raise Conflict(f"A {quote['status']} quote has no open link.",
                           status=quote["status"])
        return S.LinkOut().dump(self._link(quote))

    def _customer(self, quote):
        """The look-up's answer for notify (events carry no personal data), or 404."""
        customer = quote.get("customer") or {}
        found = contact_of(customer.get("contact") or customer.get("name"), customer)
        if found is None:
            raise NotFound(f"Quote {quote['_id']} names no customer e-mail address.")
        return S.ContactOut().dump(found)

    @http("GET", "/api/v1/quotes/<id>/customer", response=S.ContactOut, tags=TAGS,
          summary="How to reach the quote's customer (for notify and integrations)",
          responses={404: "No such quote, or no customer e-mail address on it"})
    def quote_customer(self, request, id):
        return self._customer(self._quote(id, request))

    @http("POST", "/api/v1/quotes/<id>/revise", response=S.QuoteOut, tags=TAGS,
          summary="Version n+1 as a draft; version n is superseded (quote.created)",
          responses=ACTION_ERRORS)
    def revise(self, request, id):
        actor = actor_id(caller(request, self.config))
        return self._change(request, id, lambda quote: domain.revise(
            quote, self.store.get_deal(quote["deal_id"]), utcnow(), actor=actor,
            max_versions=int(self._setting("max_versions", 20))), actor=actor)

    @http("POST", "/api/v1/quotes/<id>/void", body=S.ReasonIn, response=S.QuoteOut,
          tags=TAGS, summary="Void an open quote (quote.voided)", responses=ACTION_ERRORS)
    def void(self, request, id):
        data = json_body(request, S.ReasonIn())
        actor = actor_id(caller(request, self.config))
        return self._change(request, id, lambda quote: domain.void(
            quote, data["reason"], utcnow(), actor=actor), actor=actor)

    @http("GET", "/api/v1/quotes/<id>/pdf", tags=TAGS, content="application/pdf",
          summary="The quote as a PDF", responses={404: "No such quote",
                                                   503: "PDF rendering not installed"})
    def quote_pdf(self, request, id):
        company, locale = self._company()
        pdf = self.renderer.quote_pdf(self._quote(id, request), company, locale)
        return Response(pdf, content_type="application/pdf")

    # --- the customer, through the link (no login) -------------------------------------------

    @http("GET", "/api/v1/public/quotes", response=S.QuoteOut, tags=["customer"],
          summary="The quote a customer link opens (no login)", responses=PUBLIC_ERRORS)
    def public_quote(self, request):
        link = self._verified(request.args.get("token", ""), utcnow())
        quote = self._quote(link["quote_id"])
        domain.check_link(quote, link)
        return S.QuoteOut(only=("id", "number", "version", "status", "customer", "currency",
                                "lines", "totals", "valid_until", "terms")).dump(quote)

    def _answer(self, request, id, action):
        data = json_body(request, S.CustomerAnswerIn())
        now = utcnow()
        link = self._verified(data["token"], now)
        if link["quote_id"] != id:
            raise domain.LinkRefused("This link is for another quote.", kind="other_quote")
        quote, _ = self.store.change_quote(id, lambda quote: domain.answer(
            quote, link, action, now, name=data["name"], reason=data["reason"],
            address=request.remote_addr))
        return self._out(quote)

    @http("POST", "/api/v1/quotes/<id>/accept", body=S.CustomerAnswerIn, response=S.QuoteOut,
          tags=["customer"], summary="The customer accepts through the link (quote.accepted)",
          responses=PUBLIC_ERRORS)
    def accept(self, request, id):
        return self._answer(request, id, "accept")

    @http("POST", "/api/v1/quotes/<id>/decline", body=S.CustomerAnswerIn,
          response=S.QuoteOut, tags=["customer"],
          summary="The customer declines through the link (quote.declined)",
          responses=PUBLIC_ERRORS)
    def decline(self, request, id):
        return self._answer(request, id, "decline")

    # --- contracts and payments -------------------------------------------------------------

    @event_handler("quotes", "quote.accepted")
    def handle_quotes_quote_accepted(self, event):
        """An accepted quote becomes its contract (one per quote: its id derives from the
        quote's, so a redelivery finds it there), open for signing at once: the customer
        who accepted expects the contract next, and notify mails contract.created with
        this first link (GET .../link)."""
        quote = self._quote(event["data"]["quote_id"])
        company, _ = self._company()
        section = setting(self.config, "CONTRACTS")
        now = utcnow()
        contract, events = contracts.new_contract(
            quote, company, section["payment_schedule"], section.get("terms"), now,
            link_id=str(uuid.uuid4()),
            link_expires_at=now + dt.timedelta(days=float(section.get("sign_link_days", 14))))
        self.store.insert_contract(contract, events, actor="system:quotes",
                                   correlationid=event.get("correlationid") or event["id"])

    @http("GET", "/api/v1/contracts/<id>", response=S.ContractOut, tags=["contracts"],
          summary="One contract", responses={404: "No such contract"})
    def get_contract(self, request, id):
        return self._contract_out(self._contract(id, request))

    @http("GET", "/api/v1/contracts", query=S.ContractQuery, response=S.ContractList,
          tags=["contracts"], summary="Contracts oldest first, by cursor: a deal's, those at "
          "a status (unsigned: waiting for the customer), or all a caller reaches")
    def list_contracts(self, request):
        return S.ContractList().dump(
            self._page(request, S.ContractQuery(), self.store.contracts_page))

    @http("POST", "/api/v1/contracts/<id>/send", response=S.LinkOut, tags=["contracts"],
          summary="A signing link for the customer (a new one replaces the last; "
          "contract.sent, which notify mails)",
          responses={404: "No such contract", 409: "Signed or voided already"})
    def send_contract(self, request, id):
        actor = actor_id(caller(request, self.config))
        now = utcnow()
        expires = now + dt.timedelta(days=float(setting(self.config,
                                                        "CONTRACTS.sign_link_days", 14)))
        contract, _ = self.store.change_contract(id, lambda contract: contracts.send(
            self._in_scope(request, contract, "contract"), str(uuid.uuid4()), expires, now,
            actor=actor),
            expected=_if_match(request), actor=actor)
        return S.LinkOut().dump(self._contract_link(contract))

    @http("GET", "/api/v1/contracts/<id>/link", response=S.LinkOut, tags=["contracts"],
          summary="The contract's open signing link (the one mailed when it was created, or "
          "the last one sent); changes nothing", responses={
              404: "No such contract", 409: "Signed, voided, or no open link (rescheduled "
              "or expired: send a new one)"})
    def contract_link(self, request, id):
        contract = self._contract(id, request)
        contracts.check_open_link(contract, utcnow())
        return S.LinkOut().dump(self._contract_link(contract))

    @http("GET", "/api/v1/contracts/<id>/customer", response=S.ContactOut,
          tags=["contracts"], summary="How to reach the contract's customer (its quote's)",
          responses={404: "No such contract, or no customer e-mail address on its quote"})
    def contract_customer(self, request, id):
        contract = self._contract(id, request)
        quote = self.store.get_quote(contract["quote_id"])
        if quote is None:
            raise NotFound(f"Contract {id} has no quote here.")
        return self._customer(quote)

    @http("PUT", "/api/v1/contracts/<id>/schedule", body=S.ScheduleIn, response=S.ContractOut,
          tags=["contracts"], summary="This contract's own payment schedule (before signing; "
          "an open signing link stops working)", responses={
              404: "No such contract", 409: "Signed or voided already"})
    def reschedule_contract(self, request, id):
        data = json_body(request, S.ScheduleIn())
        actor = actor_id(caller(request, self.config))
        contract, _ = self.store.change_contract(id, lambda contract: contracts.reschedule(
            self._in_scope(request, contract, "contract"), data["milestones"], utcnow(),
            actor=actor), expected=_if_match(request), actor=actor)
        return self._contract_out(contract)

    @http("GET", "/api/v1/contracts/<id>/pdf", tags=["contracts"], content="application/pdf",
          summary="The contract as a PDF", responses={404: "No such contract",
                                                      503: "PDF rendering not installed"})
    def contract_pdf(self, request, id):
        return Response(self._contract_pdf(self._contract(id, request)),
                        content_type="application/pdf")

    def _signing_link(self, token, now):
        link = self._verified_contract(token, now)
        contract = self._contract(link["contract_id"])
        if contract.get("link_id") != link["link_id"] and \
                (contract.get("signature") or {}).get("link_id") != link["link_id"]:
            raise domain.LinkRefused("This link was replaced by a newer one.", kind="replaced")
        return link, contract

    @http("GET", "/api/v1/public/contracts", response=S.ContractOut, tags=["customer"],
          summary="The contract a signing link opens (no login)", responses=PUBLIC_ERRORS)
    def public_contract(self, request):
        _, contract = self._signing_link(request.args.get("token", ""), utcnow())
        return S.ContractOut(exclude=("payments",)).dump(contract)

    @http("GET", "/api/v1/public/contracts/pdf", tags=["customer"],
          content="application/pdf", summary="The exact PDF the customer signs (no login)",
          responses=PUBLIC_ERRORS)
    def public_contract_pdf(self, request):
        _, contract = self._signing_link(request.args.get("token", ""), utcnow())
        return Response(self._contract_pdf(contract), content_type="application/pdf")

    @http("POST", "/api/v1/contracts/<id>/sign", body=S.SignIn, response=S.ContractOut,
          tags=["customer"], summary="The customer signs through the link: typed name, "
          "time, address and the PDF's SHA-256 are kept (contract.signed)",
          responses=PUBLIC_ERRORS)
    def sign_contract(self, request, id):
        data = json_body(request, S.SignIn())
        now = utcnow()
        link = self._verified_contract(data["token"], now)
        if link["contract_id"] != id:
            raise domain.LinkRefused("This link is for another contract.",
                                     kind="other_contract")
        digest = printing.sha256(self._contract_pdf(self._contract(id)))
        required = setting(self.config, "CONTRACTS.countersign_required", False)
        contract, _ = self.store.change_contract(id, lambda contract: contracts.sign(
            contract, link, data["name"], request.remote_addr, digest, now,
            countersign_required=required))
        return self._contract_out(contract)

    @http("POST", "/api/v1/contracts/<id>/countersign", response=S.ContractOut,
          tags=["contracts"], summary="Our signature after the customer's (contract.signed)",
          responses={401: "No token", 403: "No role", 404: "No such contract",
                     409: "Not signed by the customer"})
    def countersign(self, request, id):
        who = caller(request, self.config)
        contract, _ = self.store.change_contract(id, lambda contract: contracts.countersign(
            contract, actor_id(who), utcnow()), expected=_if_match(request))
        return self._contract_out(contract)

    @http("POST", "/api/v1/contracts/<id>/payments", body=S.PaymentIn, response=S.ContractOut,
          status=201, tags=["contracts"], summary="Record a payment (Idempotency-Key "
          "required; the same key again is the same payment) (payment.received, "
          "contract.fully_paid)", responses={200: "This payment was recorded before",
                                             404: "No such contract", 409: "Over-payment, "
                                             "unsigned contract, or the key was used for "
                                             "another payment", 428: "Idempotency-Key missing"})
    def record_payment(self, request, id):
        who = caller(request, self.config)
        key = (request.headers.get("Idempotency-Key") or "").strip()
        if not key or len(key) > 200:
            raise PreconditionRequired("Recording a payment needs an Idempotency-Key header "
                                       "(1-200 characters), e.g. the bank's reference.")
        data = json_body(request, S.PaymentIn())
        payment = {"payment_id": contracts.payment_id_for(id, key), **data}
        contract, change = self.store.change_contract(id, lambda contract: (
            contracts.record_payment(contract, payment, utcnow(), actor=actor_id(who))),
            actor=actor_id(who))
        return self._contract_out(contract, status=201 if change else 200)

    @event_handler("support", "delivery.accepted")
    def handle_support_delivery_accepted(self, event):
        """The milestones due on delivery acceptance fall due (each once: a redelivery
        finds their due dates set). (Needs support's delivery.accepted in the catalog.)"""
        data, now = event["data"], utcnow()
        for contract in self.store.contracts_of_deal(data["deal_id"]):
            self.store.change_contract(contract["_id"], lambda c: contracts.delivery_accepted(
                c, data["accepted_at"], now), actor="system:quotes",
                correlationid=event.get("correlationid") or event["id"])

    # --- deals, as their events tell ---------------------------------------------------------

    def _project(self, event):
        newest, gaps = dealview.facts(event["type"], event["data"])
        self.store.project_deal(event["data"]["deal_id"], event["sequence"], newest, gaps)

    @batch_event_handler("deals", (
        "deal.created", "deal.stage_changed", "deal.updated", "deal.won"))
    def project_deal_events(self, events):
        self.store.project_deals(dealview.fold(events))

    @event_handler("deals", "deal.lost")
    def handle_deals_deal_lost(self, event):
        """The view first (no new quote for the deal from now), then its open quotes and
        unsigned contracts are voided; a redelivery finds them voided and does nothing."""
        self._project(event)
        now = utcnow()
        correlationid = event.get("correlationid") or event["id"]
        for quote in self.store.quotes_of_deal(event["data"]["deal_id"], 1000):
            self.store.change_quote(quote["_id"], lambda q: domain.void_for_lost_deal(q, now),
                                    actor="system:quotes", correlationid=correlationid)
        for contract in self.store.contracts_of_deal(event["data"]["deal_id"]):
            self.store.change_contract(contract["_id"], lambda c: contracts.void_for_lost_deal(
                c, now), actor="system:quotes", correlationid=correlationid)

    # --- timers ------------------------------------------------------------------------------

    def _overdue_gauges(self):
        """This container's gauges of overdue milestones (every instance computes the same
        from the shared contracts: dashboards take max())."""
        key = id(self.registry)
        if key not in _gauges:
            _gauges[key] = (
                Gauge("dealflow_contract_milestones_overdue", "Payment milestones past their "
                      "due date and not fully paid, by currency", ["currency"],
                      registry=self.registry),
                Gauge("dealflow_contract_overdue_amount", "Amount still unpaid on overdue "
                      "payment milestones, by currency", ["currency"], registry=self.registry),
                set())  # the currencies shown so far: one with nothing overdue shows 0
        return _gauges[key]

    @config_timer("CONTRACTS.overdue_check_interval_seconds", 60)
    def count_overdue(self):
        count_gauge, amount_gauge, shown = self._overdue_gauges()
        now = utcnow()
        totals = contracts.overdue_totals(self.store.contracts_due(now), now)
        shown.update(totals)
        for currency in shown:
            count, amount = totals.get(currency, (0, 0))
            count_gauge.labels(currency).set(count)
            # summed in Decimal; a Prometheus sample is a float64 by the exposition format,
            # so the value becomes one only here, as the metrics service's collector does
            amount_gauge.labels(currency).set(float(amount))

    @config_timer("QUOTES.expiry_check_interval_seconds", 60)
    def expire_quotes(self):
        """quote.expired once per quote: the versioned write is the claim, so of N
        instances that see the same due quote exactly one writes."""
        now = utcnow()
        batch = int(self._setting("expiry_batch_size", 200))
        for doc in self.store.due_expiries(now, batch):
            try:
                self.store.change_quote(doc["_id"], lambda q: domain.expire(q, now),
                                        current=doc)
            except Contention:
                log.info("quote %s kept changing; its expiry waits for the next pass",
                         doc["_id"])
