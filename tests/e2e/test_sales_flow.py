"""One customer through the whole funnel across processes: a lead is captured, contacted,
qualified and converted in leads; deals opens its deal from `lead.converted`, its gates are
met (an accepted quote included) and it is won; metrics counts every step exactly, in
Prometheus exposition and in the cohort funnel."""
from datetime import datetime, timedelta, timezone

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.sales import meet_every_gate, poll


def samples(url):
    text = requests.get(url + "/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_lead_becomes_a_won_deal_and_every_step_is_counted(platform):
    leads, deals, metrics = (platform.urls[s] for s in ("leads", "deals", "metrics"))
    started = datetime.now(timezone.utc) - timedelta(minutes=1)

    created = requests.post(leads + "/api/v1/leads", timeout=10, json={
        "name": "Grace Hopper", "email": "grace@example.com", "company": "Navy",
        "country": "US", "source": "referral"})
    assert created.status_code == 201, created.text
    lead_id = created.json()["id"]
    for status in ("contacted", "qualified"):
        moved = requests.post(f"{leads}/api/v1/leads/{lead_id}/status", timeout=10,
                              json={"status": status})
        assert moved.status_code == 200, moved.text
    converted = requests.post(f"{leads}/api/v1/leads/{lead_id}/convert", timeout=10,
                              json={"amount": "5000.00", "currency": "EUR"})
    assert converted.status_code == 200, converted.text

    def the_deal():
        page = requests.get(f"{deals}/api/v1/deals", params={"lead_id": lead_id},
                            timeout=5).json()
        return page["items"][0] if page["items"] else None

    deal = poll(the_deal)
    assert deal, "deals opened no deal from lead.converted"
    assert (deal["amount"], deal["currency"], deal["stage"]) == ("5000.00", "EUR", "discovery")
    refused = requests.post(f"{deals}/api/v1/deals/{deal['id']}/won", timeout=10,
                            headers={"If-Match": f'"{deal["version"]}"'})
    assert refused.status_code == 409, refused.text  # the skipped stages' gates apply
    deal = meet_every_gate(deals, platform.amqp_uri, deal)
    won = requests.post(f"{deals}/api/v1/deals/{deal['id']}/won", timeout=10,
                        headers={"If-Match": f'"{deal["version"]}"'})
    assert won.status_code == 200, won.text

    entered = ("dealflow_funnel_entered_total",)

    def counted():
        # deal.stage_changed (into won) and deal.won are two events: a scrape between the
        # batches that apply them shows the stage entered and the close not yet observed
        got = samples(metrics)
        return (got.get(entered + ((("stage", "won"),),)) == 1.0
                and got.get(("dealflow_deal_cycle_seconds_count", (("outcome", "won"),))) == 1.0
                and got)

    got = poll(counted)
    assert got, "metrics never counted the won deal"
    for stage in ("lead_created", "lead_contacted", "lead_qualified", "lead_converted",
                  "discovery", "won"):
        assert got[entered + ((("stage", stage),),)] == 1.0, stage
    # won from discovery: the skipped stages were not entered, but reached (got past)
    assert got[entered + ((("stage", "needs_confirmed"),),)] == 0.0
    assert got[("dealflow_funnel_reached_total",
                (("origin", "lead"), ("stage", "needs_confirmed")))] == 1.0
    assert got[("dealflow_leads_created_total", (("source", "referral"),))] == 1.0
    assert got[("dealflow_deal_cycle_seconds_count", (("outcome", "won"),))] == 1.0

    funnel = requests.get(metrics + "/api/v1/funnel", timeout=5, params={
        "from": started.isoformat(), "to": (started + timedelta(hours=1)).isoformat()}).json()
    assert funnel["leads"] == 1
    reached = {s["stage"]: s["reached"] for s in funnel["stages"]}
    assert reached["lead_created"] == reached["won"] == 1
    assert funnel["overall_conversion_rate"] == 1.0
