"""Metrics and the owning services agree exactly: a scripted mixed run through leads, deals
and metrics as `nameko run` processes (creates, answers to new and disqualified leads,
status moves, conversions, a deal opened for a lead before its conversion, deals moved,
won, lost, reopened and lost again), then metrics' funnel_current per stage and its final
deal outcomes must equal the counts the services' own list APIs give."""
import uuid

import requests

from tests.e2e.sales import deal_action, meet_every_gate, poll
from tests.e2e.test_sales_flow import samples

LEAD_STAGE = {"new": "lead_created", "contacted": "lead_contacted",
              "qualified": "lead_qualified", "converted": "lead_converted"}
DEAL_STAGES = ("discovery", "needs_confirmed", "proposal", "quote_negotiation",
               "contract_payment")



def count(url, **params):
    """How many items a list API holds for these filters (every page)."""
    total, cursor = 0, None
    while True:
        page = requests.get(url, params={**params, "limit": 200,
                                         **({"cursor": cursor} if cursor else {})},
                            timeout=10).json()
        total += len(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return total


class Run:
    def __init__(self, platform):
        self.leads = platform.urls["leads"]
        self.deals = platform.urls["deals"]
        self.amqp = platform.amqp_uri

    def lead(self, *steps):
        resp = requests.post(self.leads + "/api/v1/leads", timeout=10, json={
            "name": "Lead", "email": f"{uuid.uuid4().hex[:10]}@example.com",
            "source": "api"})
        assert resp.status_code == 201, resp.text
        lead_id = resp.json()["id"]
        for step in steps:
            self.step(lead_id, step)
        return lead_id

    def step(self, lead_id, step):
        base = f"{self.leads}/api/v1/leads/{lead_id}"
        if step == "call":
            resp = requests.post(base + "/activities", json={"type": "call"}, timeout=10)
        elif isinstance(step, tuple):  # ("convert", amount)
            resp = requests.post(base + "/convert", timeout=10,
                                 json={"amount": step[1], "currency": "EUR"})
        else:
            body = {"status": step}
            if step == "disqualified":
                body["reason"] = "no budget"
            resp = requests.post(base + "/status", json=body, timeout=10)
        assert resp.status_code in (200, 201), (step, resp.text)

    def deal(self, **body):
        resp = requests.post(self.deals + "/api/v1/deals", timeout=10,
                             json={"name": "Deal", **body})
        assert resp.status_code == 201, resp.text
        return resp.json()

    def act(self, deal, action="", body=None, method="post"):
        return deal_action(self.deals, deal, action, body, method)

    def lead_deal(self, lead_id):
        def found():
            items = requests.get(self.deals + "/api/v1/deals", params={"lead_id": lead_id},
                                 timeout=5).json()["items"]
            return items[0] if items else None
        deal = poll(found)
        assert deal, f"no deal for lead {lead_id}"
        return deal


def test_metrics_agree_with_the_services_own_lists(sales_platform):
    platform = sales_platform
    run = Run(platform)
    run.lead()                                                    # new
    run.lead("call")                                              # answered, still new
    run.lead("disqualified", "call")                              # stays disqualified
    run.lead("contacted")
    run.lead("call", "contacted", "qualified")
    run.lead("contacted", "qualified", "disqualified")
    won_lead = run.lead("contacted", "qualified", ("convert", "5000.00"))
    early = run.lead("contacted", "qualified")
    opened_before = run.deal(lead_id=early)                       # before the conversion
    run.step(early, ("convert", "3000.00"))

    # the conversion's deal: gates met, won straight from discovery
    deal = run.lead_deal(won_lead)
    deal = meet_every_gate(run.deals, run.amqp, deal)
    run.act(deal, "won")
    # the deal opened before its lead's conversion took the conversion's amount
    adopted = poll(lambda: (d := run.lead_deal(early))["origin"] == "lead" and d)
    assert adopted and adopted["id"] == opened_before["id"] and adopted["amount"] == "3000.00"
    # direct deals: lost, reopened, lost again; moved on and left open; lost once
    twice = run.deal(amount="100.00", currency="EUR")
    twice = run.act(twice, "lost", {"reason": "price"})
    twice = run.act(twice, "reopen")
    run.act(twice, "lost", {"reason": "timing"})
    moving = run.deal(amount="200.00", currency="EUR", checklist=["discovery_call_held"])
    run.act(moving, "stage", {"stage": "needs_confirmed"})
    once = run.deal()
    run.act(once, "lost", {"reason": "no_budget"})

    leads_url, deals_url = run.leads + "/api/v1/leads", run.deals + "/api/v1/deals"
    want = {}
    for status, stage in LEAD_STAGE.items():
        want[("dealflow_funnel_current", (("stage", stage),))] = count(leads_url,
                                                                       status=status)
    for stage in DEAL_STAGES:
        want[("dealflow_funnel_current", (("stage", stage),))] = count(
            deals_url, status="open", stage=stage)
    want[("dealflow_funnel_current", (("stage", "won"),))] = count(deals_url, status="won")
    for outcome in ("won", "lost"):
        want[("dealflow_deals_closed", (("outcome", outcome),))] = count(deals_url,
                                                                         status=outcome)
    # what the run made, so the comparison is not between two empty lists
    assert [want[("dealflow_funnel_current", (("stage", s),))] for s in LEAD_STAGE.values()] \
        == [2, 1, 1, 2]
    assert want[("dealflow_deals_closed", (("outcome", "lost"),))] == 2
    assert want[("dealflow_funnel_current", (("stage", "discovery"),))] == 1

    metrics = platform.urls["metrics"]

    def agreed():
        got = samples(metrics)
        return {k: got.get(k) for k in want}

    got = poll(lambda: agreed() == want and agreed(), timeout=60)
    assert got == want, agreed()
    # and the conversion of converted leads to deals never counts the direct ones
    got = samples(metrics)
    lead_deals = got[("dealflow_funnel_reached_total",
                      (("origin", "lead"), ("stage", "discovery")))]
    converted = got[("dealflow_funnel_reached_total",
                     (("origin", "lead"), ("stage", "lead_converted")))]
    assert (lead_deals, converted) == (2.0, 2.0)
    assert got[("dealflow_funnel_reached_total",
                (("origin", "direct"), ("stage", "discovery")))] == 3.0
