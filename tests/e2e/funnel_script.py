"""The whole sales process as a script, shared by the whole-platform test, its fault tests
and `make soak`: a plan of leads (where each is captured and how far it gets) decided up
front, driven through the HTTP APIs and the customers' signed links only, with the KPIs
the platform must then show computed from the plan alone.

Capture: a public web form, a CSV in GBK with Chinese headers, the API (each with a few
duplicates). Leads are scored and assigned by territory, contacted, qualified, some
disqualified (and some of those recycled), converted into accounts, contacts and deals.
Deals pass every gate: quotes priced from the price book, discounts approved by the tier
roles, sent, accepted or declined through the customer's link; contracts signed through
theirs; payments recorded by finance; deals won or lost with picklist reasons. A won deal's
delivery project is accepted (which makes the second payment due); its customer opens a
ticket that agents are dispatched to, answer and resolve (urgent ones only after their SLA
clocks breached on the business calendar), and the customer rates it through the link.
"""
import contextlib
import datetime as dt
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import requests

from tests.support.tokens import bearer
from tests.support.wait import wait_for

PEOPLE_FILE = Path(__file__).with_name("funnel_people.yml")
CUSTOMER = {"Authorization": None}  # the customer's calls carry no token at all
FORM_KEY = "pk_funnel"
SITE = "https://www.example.com"
PRODUCT = {"code": "FUNNEL-STD", "name_zh": "标准版", "name_en": "Standard", "unit": "套",
           "prices": {"CNY": "100.00"}, "tax_rate": 6}
QUANTITY = Decimal(10)
PRICE, TAX = Decimal("100.00"), Decimal("0.06")
CENT = Decimal("0.01")
# the payment schedule of quotes' config: 30 % on signing, 70 % on delivery acceptance
FIRST_SHARE = Decimal("0.30")
# the territories of leads' config: country -> team -> reps (round robin)
TEAMS = {"DE": "dach", "US": "north_america", "CN": "greater_china"}
REPS = {"dach": ("rep-dach-1", "rep-dach-2"),
        "north_america": ("rep-na-1", "rep-na-2", "rep-na-3"),
        "greater_china": ("rep-gc-1",)}
AGENTS = ("sue", "tom")
SUPPORT_LEAD = "sam"
MANAGERS = ("mia",)  # the directory's people with the manager role (quote_submitted)
CUSTOMERS = "customers"  # cust-<lead>@example.cn: quotes, contracts and tickets name them
# what each discount needs (quotes' approval tiers: manager over 10 %, director over 25 %)
APPROVERS = {"manager": ("manager", "mia"), "director": ("director", "dora")}
DEAL_STAGES = ("discovery", "needs_confirmed", "proposal", "quote_negotiation",
               "contract_payment")
LEAD_STAGES = {"new": "lead_created", "contacted": "lead_contacted",
               "qualified": "lead_qualified", "converted": "lead_converted"}
# SLA of the funnel's support service: a business calendar open all day on the days of
# the run (so the test never waits for office hours), urgent clocks of seconds, normal ones
# of weeks. An SLA mail goes to the ticket's agent only once it has one: the first warning
# (at half the first-response target) comes long after dispatch (every 0.2 s), also when a
# fault (a restarted support, the broker away 10 s) holds dispatch up for a while
URGENT = {"first_response_minutes": 0.5, "resolution_minutes": 0.6}


def support_settings(today=None):
    today = today or dt.datetime.now(dt.UTC).date()
    days = [(today + dt.timedelta(days=d)).isoformat() for d in (-1, 0, 1, 2)]
    return f"""
SLA:
  time_zone: Asia/Shanghai
  warning_fraction: 0.5
  calendars:
    business:
      hours: [["00:00", "24:00"]]
      holidays: CN
      extra_holidays: []
      extra_workdays: {days}
    24x7:
      always: true
  policies:
    default:
      urgent: {{first_response_minutes: {URGENT['first_response_minutes']}, \
resolution_minutes: {URGENT['resolution_minutes']}, calendar: business}}
      high: {{first_response_minutes: 60000, resolution_minutes: 600000, calendar: business}}
      normal: {{first_response_minutes: 60000, resolution_minutes: 600000, calendar: business}}
      low: {{first_response_minutes: 60000, resolution_minutes: 600000, calendar: business}}
SUPPORT:
  reopen_days: 7
  dispatch_interval_seconds: 0.2
  dispatch_batch_size: 100
  sla_check_interval_seconds: 0.1
  sla_batch_size: 200
  agents:
    - {{id: sue, skills: ["*"], capacity: 1000}}
    - {{id: tom, skills: ["*"], capacity: 1000}}
"""


def notify_settings(smtp_port, dingtalk, wecom):
    return f"""
CHANNELS:
  email:
    host: 127.0.0.1
    port: {smtp_port}
    security: none
    username:
    password:
    sender: Dealflow <noreply@dealflow.example.com>
    timeout_seconds: 5
  teams:
    support: {{kind: dingtalk, webhook: "{dingtalk.webhook}", secret: "{dingtalk.secret}"}}
    ops: {{kind: wecom, webhook: "{wecom.webhook}"}}
  dingtalk: {{timeout_seconds: 5}}
  wecom: {{timeout_seconds: 5}}
  sms: {{}}
"""


def platform_env(people_file):
    """Settings every service of the funnel gets from the environment."""
    return {
        "PEOPLE_FILE": str(people_file), "LOG_LEVEL": "WARNING", "KPIS_REFRESH_SECONDS": 1,
        "LEADS_RESPONSE_MINUTES": 0,
        "CAPTURE_FORMS": f'[{{key: {FORM_KEY}, origins: ["{SITE}"], '
                         "per_address: {limit: 100000, window_seconds: 600}, "
                         "per_form: {limit: 100000, window_seconds: 60}}]",
        "NOTIFY_DELIVERY_INTERVAL": 0.2, "NOTIFY_RATE_COUNT": 0,
        "NOTIFY_RETRY_DELAYS": "[0.5, 1, 2, 2, 2, 2, 2, 2, 2, 2]",
        "OUTBOX_SWEEP_INTERVAL": 1, "OUTBOX_GRACE": 1,
        "CONSUMER_RETRY_DELAYS_MS": "[200, 500, 1000, 2000, 4000]",
    }


def call(method, url, expect=200, **kwargs):
    resp = requests.request(method, url, timeout=20, **kwargs)
    assert resp.status_code == expect, f"{method} {url}: {resp.status_code} {resp.text}"
    return resp


def poll(fn, what, timeout=60.0):
    """The first truthy value of fn(); a dependency briefly refusing counts as not yet."""
    value = wait_for(fn, timeout, interval=0.2,
                     ignore=(requests.RequestException, AssertionError, KeyError,
                                            IndexError))
    assert value, f"timed out waiting for {what}"
    return value


def money(value):
    return str(Decimal(value).quantize(CENT))


@dataclass
class Lead:
    """One lead of the plan: how it is captured and how far it gets."""
    index: int
    channel: str        # form | csv | api
    country: str
    fate: str           # new | contacted | recycled | disqualified | qualified | converted
    deal: str = None    # for converted: won | lost_discovery | lost_needs | lost_quote |
    #                     open_proposal | open_contract
    discount: int = 0
    ticket: str = None  # for won: urgent | normal
    accept_delivery: bool = False
    score: int = 0
    email: str = ""
    id: str = None      # learnt while the plan runs
    owner: str = None

    @property
    def source(self):
        return {"form": "web_form", "csv": "event", "api": "api"}[self.channel]

    @property
    def team(self):
        return TEAMS[self.country]

    @property
    def total(self):
        net = (PRICE * QUANTITY * (100 - self.discount) / 100).quantize(CENT)
        return (net * (1 + TAX)).quantize(CENT)

    @property
    def first_payment(self):
        return (self.total * FIRST_SHARE).quantize(CENT)

    @property
    def approvals(self):
        return [t for t, over in (("manager", 10), ("director", 25)) if self.discount > over]


def plan(n=200, run=None):
    """n leads, a fifth by the web form, three tenths by CSV, half by the API; countries
    and fates cycle so that every path is taken at any n >= 20."""
    run = run or uuid.uuid4().hex[:8]
    leads = []
    countries = ["DE"] * 7 + ["US"] * 9 + ["CN"] * 4
    fates = ["new", "contacted", "recycled", "disqualified", "qualified",
             "converted", "converted", "converted", "converted", "converted"]
    deals = ["won", "won", "lost_discovery", "won", "lost_quote", "won", "lost_needs",
             "open_proposal", "won", "open_contract"]
    discounts = (5, 15, 30)
    converted = 0
    for i in range(n):
        channel = "form" if i < n // 5 else "csv" if i < n // 2 else "api"
        # a company domain of its own: conversion matches accounts by e-mail domain
        lead = Lead(i, channel, countries[i % len(countries)], fates[i % len(fates)],
                    email=f"lead{i}@c{i}-{run}.example.com")
        if lead.fate == "converted":
            lead.deal = deals[converted % len(deals)]
            lead.discount = discounts[converted % len(discounts)]
            if lead.deal == "won":
                won = sum(1 for x in leads if x.deal == "won")
                lead.ticket = "urgent" if won % 3 == 0 else "normal"
                lead.accept_delivery = won % 4 != 3
                lead.score = won % 5 + 1
            converted += 1
        leads.append(lead)
    return leads


@dataclass
class Expected:
    """What the platform must show after the plan ran, computed from the plan alone."""
    samples: dict = field(default_factory=dict)
    emails: Counter = field(default_factory=Counter)
    chats: int = 0
    leads: int = 0
    duplicates: int = 0
    funnel: dict = field(default_factory=dict)   # stage -> cohort leads that reached it


# --- the expected KPIs -------------------------------------------------------------------------

def expected(leads, duplicates):
    s = {}
    c = Counter()
    for lead in leads:
        c[("created", lead.source)] += 1
    s.update({("dealflow_leads_created_total", (("source", src),)): float(n)
              for (kind, src), n in c.items() if kind == "created"})
    reached = Counter()
    current = Counter()
    lost_reasons = Counter()
    closed = Counter()
    quotes = Counter()
    quotes_now = Counter()
    contracts_now = Counter()
    contracted = collected = Decimal(0)
    discount_sum, discount_n, approved_with_tiers = Decimal(0), 0, 0
    breaches, ratings, resolved = Counter(), Counter(), Counter()
    deliveries_open = 0
    emails = Counter()
    chats = 0
    for lead in leads:
        team = lead.team
        emails[("lead_assigned", team)] += 1
        reached["lead_created"] += 1
        if lead.fate in ("contacted", "qualified", "converted", "disqualified"):
            reached["lead_contacted"] += 1
        if lead.fate in ("qualified", "converted", "disqualified"):
            reached["lead_qualified"] += 1
        if lead.fate == "new":
            current["lead_created"] += 1
        elif lead.fate == "contacted":
            current["lead_contacted"] += 1
        elif lead.fate == "qualified":
            current["lead_qualified"] += 1
        if lead.fate != "converted":
            continue
        reached["lead_converted"] += 1
        current["lead_converted"] += 1
        path = {"lost_discovery": 1, "lost_needs": 2, "open_proposal": 3,
                "lost_quote": 4, "open_contract": 5, "won": 5}[lead.deal]
        for stage in DEAL_STAGES[:path]:
            reached[stage] += 1
        if lead.deal.startswith("open"):
            current[DEAL_STAGES[path - 1]] += 1
        if lead.deal.startswith("lost"):
            closed["lost"] += 1
            lost_reasons[{"lost_discovery": "no_budget", "lost_needs": "competitor",
                          "lost_quote": "price"}[lead.deal]] += 1
        if lead.deal in ("lost_quote", "open_contract", "won"):
            quotes["created"] += 1
            quotes["submitted"] += 1
            quotes["approved"] += 1
            quotes["sent"] += 1
            discount_sum += lead.discount
            discount_n += 1
            approved_with_tiers += bool(lead.approvals)
            emails[("quote_submitted", "manager")] += bool(lead.approvals)
            # the customer gets the sent quote (notify asks quotes for the address)
            emails[("quote_sent", CUSTOMERS)] += 1
            if lead.deal == "lost_quote":
                quotes["declined"] += 1
                quotes_now["declined"] += 1
            else:
                quotes["accepted"] += 1
                quotes_now["accepted"] += 1
                # ...and the contract it became, to sign
                emails[("contract_created", CUSTOMERS)] += 1
                # the rep sends the signing link again (POST .../send): a new one, mailed
                emails[("contract_sent", CUSTOMERS)] += 1
        if lead.deal == "open_contract":
            contracts_now["sent"] += 1
        if lead.deal != "won":
            continue
        reached["won"] += 1
        current["won"] += 1
        closed["won"] += 1
        contracted += lead.total
        collected += lead.first_payment
        if lead.accept_delivery:
            collected += lead.total - lead.first_payment
            contracts_now["fully_paid"] += 1
        else:
            contracts_now["signed"] += 1
            deliveries_open += 1
        resolved[lead.ticket] += 1
        ratings[lead.score] += 1
        emails[("ticket_assigned", "agent")] += 1
        emails[("ticket_resolved", CUSTOMERS)] += 1  # the ticket's contact, with the survey
        if lead.ticket == "urgent":
            for kind in ("first_response", "resolution"):
                breaches[(kind, "urgent")] += 1
            # a warning and a breach per clock, each to the agent and the support lead
            emails[("ticket_sla", "agent")] += 4
            emails[("ticket_sla", SUPPORT_LEAD)] += 4
            chats += 2
    entered = ("dealflow_funnel_entered_total",)
    for stage in (*LEAD_STAGES.values(), *DEAL_STAGES, "won"):
        s[entered + ((("stage", stage),),)] = float(reached[stage])
        s[("dealflow_funnel_current", (("stage", stage),))] = float(current[stage])
    for stage in (*DEAL_STAGES, "won"):
        s[("dealflow_funnel_reached_total", (("origin", "lead"), ("stage", stage)))] = \
            float(reached[stage])
    for outcome in ("won", "lost"):
        s[("dealflow_deals_closed", (("outcome", outcome),))] = float(closed[outcome])
        s[("dealflow_deal_cycle_seconds_count", (("outcome", outcome),))] = \
            float(closed[outcome])
    for reason, n in lost_reasons.items():
        s[("dealflow_deals_lost_total", (("reason", reason),))] = float(n)
    for status in ("approved", "sent", "accepted", "declined"):
        s[("dealflow_quotes_total", (("status", status),))] = float(quotes[status])
    for status, n in quotes_now.items():
        s[("dealflow_quotes_current", (("status", status),))] = float(n)
    # Prometheus samples are float64: the script's Decimal sums and the exposition's text
    # round to the same float, so these comparisons stay exact
    s[("dealflow_quote_discount_percent_sum", ())] = float(discount_sum)
    s[("dealflow_quote_discount_quotes", ())] = float(discount_n)
    s[("dealflow_contracted_amount", (("currency", "CNY"),))] = float(contracted)
    s[("dealflow_collected_amount", (("currency", "CNY"),))] = float(collected)
    for (kind, priority), n in breaches.items():
        s[("dealflow_ticket_sla_breaches_total", (("kind", kind), ("priority", priority)))] = \
            float(n)
    for score in range(1, 6):
        s[("dealflow_csat_ratings_total", (("score", str(score)),))] = float(ratings[score])
    s[("dealflow_deliveries_open", ())] = float(deliveries_open)
    funnel = {stage: reached[stage] for stage in (*LEAD_STAGES.values(), *DEAL_STAGES, "won")}
    return Expected(samples=s, emails=_mailboxes(emails), chats=chats, leads=len(leads),
                    duplicates=duplicates, funnel=funnel)


def _mailboxes(emails):
    """Messages per group of mailboxes: a team's reps (round robin spreads them), the
    agents (dispatch spreads them), the managers, the support lead."""
    boxes = Counter()
    for (rule, who), n in emails.items():
        group = {"lead_assigned": who, "quote_submitted": "managers"}.get(rule, who)
        boxes["agents" if group == "agent" else group] += n
    return boxes


def mailbox_group(address):
    local = address.split("@")[0]
    for team, reps in REPS.items():
        if local in reps:
            return team
    if local in AGENTS:
        return "agents"
    if local in MANAGERS:
        return "managers"
    if local.startswith("cust-"):
        return CUSTOMERS
    return local


# --- driving the platform ----------------------------------------------------------------------

class Gate:
    """Requests to one service pass unless a fault holds the gate: a kill -9 lands between
    that service's HTTP requests, never inside one (a client cannot know whether a write
    whose answer it lost was made; events, consumers and timers in flight are fair game)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._busy = 0
        self._closed = False

    @contextlib.contextmanager
    def passing(self):
        with self._cond:
            while self._closed:
                self._cond.wait()
            self._busy += 1
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def held(self):
        with self._cond:
            while self._closed:
                self._cond.wait()
            self._closed = True
            while self._busy:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._closed = False
                self._cond.notify_all()


class Driver:
    """Runs a plan against a running platform (its urls), `workers` leads at a time."""

    def __init__(self, urls, workers=16, log=print):
        self.urls = urls
        self.gates = {name: Gate() for name in urls}
        self.workers = workers
        self.admin = bearer()
        self.log = log
        self.finished = 0

    def url(self, service, path):
        return self.urls[service] + path

    def call(self, method, url, expect=200, **kwargs):
        """One request through the service's gate; a refused connection or a 503 (the
        service restarting, its database away) is tried again, as a client would, for up to
        a minute. `expect` None: any answer."""
        service = next(name for name, base in self.urls.items() if url.startswith(base + "/"))
        deadline = time.monotonic() + 60
        while True:
            with self.gates[service].passing():
                try:
                    resp = requests.request(method, url, timeout=30, **kwargs)
                except requests.ConnectionError as exc:
                    if "NewConnectionError" not in repr(exc) or time.monotonic() > deadline:
                        raise
                    resp = None
            if resp is not None and (resp.status_code != 503 or time.monotonic() > deadline):
                break
            time.sleep(0.2)
        assert expect is None or resp.status_code == expect, \
            f"{method} {url}: {resp.status_code} {resp.text}"
        return resp

    def setup(self):
        """Once per platform: the price book's product and the chat rule."""
        resp = self.call("post", self.url("quotes", "/api/v1/products"), None,
                         json=PRODUCT, headers=self.admin)
        assert resp.status_code in (201, 409), resp.text
        self.call("put", self.url("notify", "/api/v1/rules/ticket_breached_chat"),
                  headers=self.admin, json={
                      "event": "ticket.sla_breached", "template": "ticket_sla",
                      "recipients": ["channel:support", "channel:ops"],
                      "channels": ["dingtalk", "wecom"]})

    def run(self, leads, duplicates=3):
        """Capture every lead (with `duplicates` repeated per channel), then take each as
        far as its plan says, concurrently."""
        started = time.monotonic()
        self.capture(leads, duplicates)
        self.log(f"funnel: {len(leads)} leads captured in {time.monotonic() - started:.1f} s")
        with ThreadPoolExecutor(self.workers) as pool:
            for done in pool.map(self.follow, leads):
                assert done
                self.finished += 1
                if self.finished % 50 == 0:
                    self.log(f"funnel: {self.finished} leads through, "
                             f"{time.monotonic() - started:.1f} s")
        self.log(f"funnel: done in {time.monotonic() - started:.1f} s")
        return expected(leads, duplicates)

    # capture
    def capture(self, leads, duplicates):
        by = {ch: [x for x in leads if x.channel == ch] for ch in ("form", "csv", "api")}
        with ThreadPoolExecutor(self.workers) as pool:
            forms = list(pool.map(self.submit_form, by["form"] + by["form"][:duplicates]))
            apis = list(pool.map(self.create_api, by["api"] + by["api"][:duplicates]))
        assert all(forms)
        assert Counter(apis) == Counter({201: len(by["api"]), 409: min(duplicates,
                                                                         len(by["api"]))})
        if by["csv"]:
            self.import_csv(by["csv"], duplicates)
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(self.find, by["form"] + by["csv"]))

    def submit_form(self, lead):
        resp = self.call("post", self.url("leads", f"/api/v1/forms/{FORM_KEY}/leads"), None,
                         headers={**CUSTOMER, "Origin": SITE}, json={
                                 "name": f"Web {lead.index}", "email": lead.email,
                                 "company": f"Web Co {lead.index}", "country": lead.country})
        assert resp.status_code == 202, resp.text
        return True

    def create_api(self, lead):
        resp = self.call("post", self.url("leads", "/api/v1/leads"), None, headers=self.admin,
                         json={"name": f"Api {lead.index}", "email": lead.email,
                                   "company": f"Api Co {lead.index}", "country": lead.country,
                                   "source": "api"})
        assert resp.status_code in (201, 409), resp.text
        if resp.status_code == 201:
            lead.id = resp.json()["id"]
        return resp.status_code

    def import_csv(self, leads, duplicates):
        rows = [f"客户{x.index},公司{x.index},{x.email},{x.country},event\n" for x in leads]
        body = "姓名,公司,邮箱,国家,来源\n" + "".join(rows + rows[:duplicates])
        report = self.call("post", self.url("leads", "/api/v1/leads/import"),
                           data=body.encode("gbk"), headers={
                               **self.admin, "Content-Type": "text/csv",
                               "Idempotency-Key": f"funnel-{leads[0].email}"}).json()
        assert (report["encoding"], report["created"], report["duplicates"]) == \
            ("gb18030", len(leads), min(duplicates, len(leads))), report

    def find(self, lead):
        def found():
            page = self.call("get", self.url("leads", "/api/v1/leads/search"), headers=self.admin,
                             params={"q": lead.email, "by": "email"}).json()
            return page["items"][0]["id"] if page["items"] else None
        lead.id = poll(found, f"lead {lead.email}")

    # the lead's life
    def follow(self, lead):
        base = self.url("leads", f"/api/v1/leads/{lead.id}")
        status = lambda s, **kw: self.call("post", base + "/status", headers=self.admin,  # noqa: E731
                                           json={"status": s, **kw})
        got = self.call("get", base, headers=self.admin).json()
        assert got["owner_id"] in REPS[lead.team], got
        lead.owner = got["owner_id"]
        if lead.fate == "new":
            return True
        if lead.fate == "recycled":
            status("disqualified", reason="bad_timing")
            self.call("post", base + "/recycle", headers=self.admin, json={"reason": "next year"})
            return True
        self.call("post", base + "/activities", 201, headers=self.admin, json={"type": "call"})
        status("contacted")
        if lead.fate == "contacted":
            return True
        status("qualified")
        if lead.fate == "disqualified":
            status("disqualified", reason="no_need")
            return True
        if lead.fate == "qualified":
            return True
        self.call("post", base + "/convert", headers=self.admin,
                  json={"amount": money(lead.total), "currency": "CNY"})
        self.sell(lead)
        return True

    def sell(self, lead):
        deals = self.url("deals", "/api/v1/deals")
        deal = poll(lambda: self.call("get", deals, headers=self.admin,
                                      params={"lead_id": lead.id}).json()["items"][0],
                         f"the deal of lead {lead.id}")
        assert deal["account"] and deal["stage"] == "discovery", deal

        def act(deal, action="", body=None, method="post", expect=200):
            path = f"{deals}/{deal['id']}" + (f"/{action}" if action else "")
            return self.call(method, path, expect, json=body or {},
                             headers={**self.admin, "If-Match": f'"{deal["version"]}"'}).json()

        if lead.deal == "lost_discovery":
            act(deal, "lost", {"reason": "no_budget"})
            return
        deal = act(deal, "", {"checklist": {"discovery_call_held": True}}, method="patch")
        deal = act(deal, "stage", {"stage": "needs_confirmed"})
        if lead.deal == "lost_needs":
            act(deal, "lost", {"reason": "competitor"})
            return
        deal = act(deal, "", {"needs_summary": "10 seats"}, method="patch")
        deal = act(deal, "stage", {"stage": "proposal"})
        if lead.deal == "open_proposal":
            return
        deal = act(deal, "stage", {"stage": "quote_negotiation"})
        quote = self.quote(lead, deal)
        if lead.deal == "lost_quote":
            self.call("post", self.url("quotes", f"/api/v1/quotes/{quote['id']}/decline"),
                      headers=CUSTOMER, json={"token": quote["token"], "reason": "too expensive"})
            deal = poll(lambda: (d := self.call("get", f"{deals}/{deal['id']}",
                                                headers=self.admin).json())["version"] and d,
                             "the deal")
            act(deal, "lost", {"reason": "price"})
            return
        self.call("post", self.url("quotes", f"/api/v1/quotes/{quote['id']}/accept"),
                  headers=CUSTOMER, json={"token": quote["token"], "name": "张伟"})
        deal = poll(lambda: (d := self.call("get", f"{deals}/{deal['id']}",
                                            headers=self.admin).json())["accepted_quote"] and d,
                         "the accepted quote in the deal")
        assert deal["amount"] == money(lead.total), deal
        deal = act(deal, "stage", {"stage": "contract_payment"})
        contract = poll(lambda: self.call("get", self.url("quotes", "/api/v1/contracts"),
                                          headers=self.admin,
                                          params={"deal_id": deal["id"]}).json()["items"][0],
                             "the contract")
        signing = self.call("post", self.url("quotes", f"/api/v1/contracts/{contract['id']}/send"),
                            headers=self.admin).json()
        if lead.deal == "open_contract":
            return
        self.call("post", self.url("quotes", f"/api/v1/contracts/{contract['id']}/sign"),
                  headers=CUSTOMER, json={"token": signing["token"], "name": "张伟"})
        self.pay(contract, 0, lead.first_payment)
        deal = poll(lambda: (d := self.call("get", f"{deals}/{deal['id']}",
                                            headers=self.admin).json())["contract_signed"]
                         and d["first_payment"] and d, "the signature and payment in the deal")
        act(deal, "won")
        self.deliver(lead, deal, contract)
        self.support(lead, deal)

    def quote(self, lead, deal):
        rep = bearer("rep", sub=lead.owner, team=lead.team)
        body = {"deal_id": deal["id"], "currency": "CNY", "discount_percent": str(lead.discount),
                "customer": {"name": deal["account"], "contact": "张伟", "locale": "zh-CN",
                             "email": f"cust-{lead.index}@example.cn"},
                "valid_until": "2099-12-31T23:59:59+08:00",
                "lines": [{"product_code": PRODUCT["code"], "quantity": str(QUANTITY)}]}
        quotes = self.url("quotes", "/api/v1/quotes")
        # quotes learns of the deal from deal.created: until then, 409 unknown_deal
        quote = poll(lambda: (r := self.call("post", quotes, None, json=body, headers=rep))
                     .status_code == 201 and r.json(), "quotes to know the deal")
        assert quote["totals"]["total"] == money(lead.total), quote["totals"]
        submitted = self.call("post", f"{quotes}/{quote['id']}/submit", headers=rep).json()
        assert [t["key"] for t in submitted["approvals_required"]] == lead.approvals
        for tier in lead.approvals:
            role, sub = APPROVERS[tier]
            self.call("post", f"{quotes}/{quote['id']}/approve", headers=bearer(role, sub=sub),
                      json={"tier": tier, "reason": "volume"})
        link = self.call("post", f"{quotes}/{quote['id']}/send", headers=rep).json()["link"]
        self.call("get", self.url("quotes", "/api/v1/public/quotes"), headers=CUSTOMER,
                  params={"token": link["token"]})
        return {**quote, "token": link["token"]}

    def pay(self, contract, milestone, amount):
        fay = bearer("finance", sub="fay")
        reference = f"PAY-{contract['id']}-{milestone}"
        self.call("post", self.url("quotes", f"/api/v1/contracts/{contract['id']}/payments"), 201,
                  headers={**fay, "Idempotency-Key": reference},
                  json={"amount": money(amount), "method": "bank_transfer", "reference": reference,
                        "received_at": dt.datetime.now(dt.UTC).isoformat()})

    def deliver(self, lead, deal, contract):
        support = self.url("support", "/api/v1/deliveries")
        project = poll(lambda: self.call("get", support, headers=self.admin,
                                         params={"deal_id": deal["id"]}).json()["items"][0],
                            "the delivery project")
        if not lead.accept_delivery:
            return
        for step in project["steps"]:
            done = self.call("post", f"{support}/{project['id']}/steps/{step['key']}/complete",
                             headers=self.admin).json()
        assert done["status"] == "accepted"
        quotes = self.url("quotes", f"/api/v1/contracts/{contract['id']}")
        # the second milestone falls due when quotes heard of the acceptance
        poll(lambda: all(m.get("due_at") for m in self.call("get", quotes, headers=self.admin)
                         .json()["milestones"]), "the delivery milestone due")
        self.pay(contract, 1, lead.total - lead.first_payment)

    def support(self, lead, deal):
        tickets = self.url("support", "/api/v1/tickets")
        ticket = self.call("post", tickets, 201, headers=self.admin, json={
            "account": deal["account"], "deal_id": deal["id"], "subject": "安装问题",
            "channel": "email", "priority": lead.ticket,
            "contact": {"name": "张伟", "email": f"cust-{lead.index}@example.cn"}}).json()
        url = f"{tickets}/{ticket['id']}"
        ticket = poll(lambda: (t := self.call("get", url, headers=self.admin).json())["assignee"]
                      and t, "the ticket's dispatch")
        if lead.ticket == "urgent":
            poll(lambda: (sla := self.call("get", url, headers=self.admin).json()["sla"])
                 ["first_response"]["breached"] and sla["resolution"]["breached"],
                 "the urgent ticket's SLA breaches", timeout=120)
        agent = bearer("support_agent", sub=ticket["assignee"], team="support")
        self.call("post", url + "/replies", 201, headers=agent, json={"body": "已为您处理"})
        self.call("post", url + "/status", headers=agent, json={"status": "resolved"})
        link = self.call("get", url + "/rating-link", headers=self.admin).json()
        self.call("post", url + "/rating", 201, headers=CUSTOMER, params={"token": link["token"]},
                  json={"score": lead.score, "comment": "谢谢"})


# --- the platform the funnel runs on -----------------------------------------------------------

class WholePlatform:
    """Every service as a `nameko run` process on `amqp_uri`, with the funnel's people,
    calendar and channels, a private Mailpit and the chat robots; `service_env` (e.g. a
    proxy's address as one service's MONGO_URI) goes to single services."""

    def __init__(self, amqp_uri, workdir, service_env=None, replicas=1, **env):
        from tests.support.mailpit import Mailpit
        from tests.support.platform import Platform
        from tests.support.receivers import DingTalkRobot, WeComRobot

        self.mailpit = Mailpit(str(workdir), allowed=r"@example\.(com|cn)$").start()
        self.dingtalk = DingTalkRobot("funnel-token", "SEC-funnel").start()
        self.wecom = WeComRobot("funnel-key").start()
        self.platform = Platform(
            amqp_uri, service_env=service_env, replicas=replicas,
            settings={"support": support_settings(),
                      "notify": notify_settings(self.mailpit.smtp_port, self.dingtalk,
                                                self.wecom)},
            **{**platform_env(PEOPLE_FILE), **env})

    def start(self):
        try:
            self.platform.start()
        except BaseException:
            self.mailpit.stop()
            self.dingtalk.stop()
            self.wecom.stop()
            raise
        return self

    @property
    def urls(self):
        return self.platform.urls

    def stop(self):
        try:
            return self.platform.stop()
        finally:
            self.platform.drop_databases()
            self.mailpit.stop()
            self.dingtalk.stop()
            self.wecom.stop()



# --- what the platform shows ---------------------------------------------------------------------

def scraped(url):
    """A service's /metrics as {(name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(url + "/metrics", timeout=10).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def shown(urls, want):
    """The expected series as the metrics service shows them now."""
    got = scraped(urls["metrics"])
    return {k: got.get(k) for k in want.samples}


def funnel_shown(urls, since, until):
    body = call("get", urls["metrics"] + "/api/v1/funnel", headers=bearer(),
                params={"from": since.isoformat(), "to": until.isoformat()}).json()
    return {"leads": body["leads"], "overall": body["overall_conversion_rate"],
            "reached": {s["stage"]: s["reached"] for s in body["stages"]}}


def funnel_wanted(want):
    won = want.funnel["won"]
    return {"leads": want.leads, "overall": won / want.leads if want.leads else None,
            "reached": want.funnel}


def mail_messages(mailpit):
    """Every message summary in the inbox."""
    found, start = [], 0
    while True:
        resp = requests.get(f"{mailpit.api}/messages", params={"start": start, "limit": 500},
                            timeout=10)
        resp.raise_for_status()
        page = resp.json()["messages"]
        found += page
        if len(page) < 500:
            return found
        start += len(page)


def mail_shown(mailpit):
    """Distinct notifications per mailbox group. A mail is sent at least once: notify sends
    it again (with the same Message-ID, one per notification) when it could not record the
    first send within its lease (a kill -9 between the two), so a receiver tells a resend
    by its Message-ID, and so does this count."""
    seen = set()
    for message in mail_messages(mailpit):
        for to in message.get("To") or []:
            seen.add((mailbox_group(to["Address"]), message["MessageID"]))
    return Counter(group for group, _ in seen)


def mail_resent(mailpit):
    """How many mails arrived again under a Message-ID already received (informational)."""
    counts = Counter(m["MessageID"] for m in mail_messages(mailpit))
    return sum(n - 1 for n in counts.values())


def settled(fn, want, timeout):
    """fn() once it equals `want` (polled), else its last value: for the assertion."""
    got = wait_for(lambda: (value := fn()) == want and value, timeout, interval=0.5,
                   ignore=(requests.RequestException,))
    return got or fn()


def panel_wants(want):
    """The Grafana panel expressions (and recorded series) whose value follows from the
    plan: expression -> {labels that matter: value}. Panels over time (rates, increases,
    quantiles of durations) are checked for data only: their values depend on the clock."""
    s, reached = want.samples, want.funnel

    def series(name, label):
        return {((label, dict(k)[label]),): v for (n, k), v in s.items() if n == name}

    def ratio(a, b):
        return a / b if b else None

    w = {
        "max by (stage) (dealflow_funnel_entered_total)":
            series("dealflow_funnel_entered_total", "stage"),
        "max by (stage) (dealflow_funnel_current)": series("dealflow_funnel_current", "stage"),
        "max by (reason) (dealflow_deals_lost_total)":
            series("dealflow_deals_lost_total", "reason"),
        "max by (status) (dealflow_quotes_total)": series("dealflow_quotes_total", "status"),
        "max by (status) (dealflow_quotes_current)": series("dealflow_quotes_current", "status"),
        "max by (score) (dealflow_csat_ratings_total)":
            series("dealflow_csat_ratings_total", "score"),
        "dealflow:funnel_overall_conversion:ratio": {(): ratio(reached["won"], want.leads)},
        "max(dealflow_deliveries_open)": {(): s[("dealflow_deliveries_open", ())]},
        "max(dealflow_quote_discount_percent_sum) / max(dealflow_quote_discount_quotes)":
            {(): ratio(s[("dealflow_quote_discount_percent_sum", ())],
                       s[("dealflow_quote_discount_quotes", ())])},
        'max(dealflow_quotes_total{status="accepted"}) / '
        'max(dealflow_quotes_total{status="sent"})':
            {(): ratio(s[("dealflow_quotes_total", (("status", "accepted"),))],
                       s[("dealflow_quotes_total", (("status", "sent"),))])},
    }
    won = s[("dealflow_deals_closed", (("outcome", "won"),))]
    lost = s[("dealflow_deals_closed", (("outcome", "lost"),))]
    w["dealflow:deal_win:ratio"] = {(): ratio(won, won + lost)}
    stages = (*LEAD_STAGES.values(), *DEAL_STAGES, "won")
    w["dealflow:funnel_conversion:ratio"] = {
        (("from", a), ("to", b)): ratio(reached[b], reached[a])
        for a, b in zip(stages, stages[1:], strict=False)}
    w["max by (stage, origin) (dealflow_funnel_reached_total{origin=~\"lead|direct\"})"] = {
        (("origin", "lead"), ("stage", stage)): float(reached[stage])
        for stage in (*DEAL_STAGES, "won")}
    ratings = series("dealflow_csat_ratings_total", "score")
    rated = sum(ratings.values())
    w[next(e for e in ALL_PANELS() if e.startswith("(1 * max(dealflow_csat_ratings_total"))] = {
        (): ratio(sum(int(k[0][1]) * v for k, v in ratings.items()), rated)}
    w['max by (currency) (dealflow_contracted_amount) or label_replace(max by (currency) '
      '(dealflow_collected_amount), "kind", "collected", "", "")'] = {
        (("currency", "CNY"),): s[("dealflow_contracted_amount", (("currency", "CNY"),))],
        (("currency", "CNY"), ("kind", "collected")):
            s[("dealflow_collected_amount", (("currency", "CNY"),))]}
    return w


def ALL_PANELS():  # noqa: N802 - read lazily: the e2e test module owns the dashboard parser
    from tests.e2e.test_metrics_prometheus import panel_expressions

    return [expr for _, expr in panel_expressions()]


def prometheus_mismatches(prometheus, want):
    """[(expression, what is wrong)]: panels without data, and panels (or the recorded
    series they read) whose values differ from the plan's."""
    wrong = []
    wants = panel_wants(want)
    panels = ALL_PANELS()
    for expr in dict.fromkeys([*panels, *wants]):
        result = prometheus.query(expr)
        if not result:
            wrong.append((expr, "no data"))
            continue
        got = [({k: v for k, v in r["metric"].items() if k != "__name__"},
                float(r["value"][1])) for r in result]
        for labels, value in wants.get(expr, {}).items():
            matching = [v for have, v in got if have == dict(labels)]
            if value is None or matching != [float(value)]:
                wrong.append((expr, f"{dict(labels)}: {matching} != {value}"))
    return wrong


def differences(whole, want, since, timeout=60):
    """What the platform shows that differs from `want`, as {what: (shown, wanted)};
    empty when everything is exact. Each part is polled until it settles or `timeout`."""
    urls, out = whole.urls, {}
    got = settled(lambda: shown(urls, want), want.samples, timeout)
    out.update({k: (got.get(k), v) for k, v in want.samples.items() if got.get(k) != v})
    until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    wanted = funnel_wanted(want)
    got = settled(lambda: funnel_shown(urls, since, until), wanted, timeout)
    out.update({("funnel", k): (got[k], v) for k, v in wanted.items() if got[k] != v})
    got = settled(lambda: mail_shown(whole.mailpit), want.emails, timeout)
    out.update({("mail", k): (got.get(k, 0), want.emails.get(k, 0))
                for k in set(got) | set(want.emails) if got.get(k, 0) != want.emails.get(k, 0)})
    chats = {"dingtalk": want.chats, "wecom": want.chats}
    got = settled(lambda: {"dingtalk": len(whole.dingtalk.received),
                           "wecom": len(whole.wecom.received)}, chats, timeout)
    out.update({("chat", k): (got[k], v) for k, v in chats.items() if got[k] != v})
    return out
