"""Security across processes: a rep's own lead becomes the rep's own deal (lead.converted
carries the owner, deals gives it the owner's team from the people directory), the rep's
manager sees both, another rep sees neither, and the actor of each write is the token's
subject in the events the deal's history records."""
import requests

from tests.e2e.sales import poll
from tests.support.tokens import bearer

ANN = bearer("rep", sub="ann", team="dach")
BOB = bearer("rep", sub="bob", team="dach")
CAROL = bearer("rep", sub="carol", team="east")
MIA = bearer("manager", sub="mia", team="dach")


def test_a_reps_lead_becomes_their_deal_and_stays_out_of_other_reps_reach(sales_platform):
    leads, deals = sales_platform.urls["leads"], sales_platform.urls["deals"]
    created = requests.post(leads + "/api/v1/leads", timeout=10, headers=ANN, json={
        "name": "Li Na", "email": "li.na.e2e@example.cn", "country": "CN"})
    assert created.status_code == 201, created.text
    lead_id = created.json()["id"]
    for status in ("contacted", "qualified"):
        moved = requests.post(f"{leads}/api/v1/leads/{lead_id}/status", timeout=10,
                              headers=ANN, json={"status": status})
        assert moved.status_code == 200, moved.text
    assert requests.get(f"{leads}/api/v1/leads/{lead_id}", timeout=10,
                        headers=CAROL).status_code == 404
    converted = requests.post(f"{leads}/api/v1/leads/{lead_id}/convert", timeout=10,
                              headers=ANN, json={"amount": "800.00", "currency": "CNY"})
    assert converted.status_code == 200, converted.text

    def the_deal(headers):
        page = requests.get(f"{deals}/api/v1/deals", params={"lead_id": lead_id},
                            headers=headers, timeout=5).json()
        return page["items"][0] if page["items"] else None

    deal = poll(lambda: the_deal(ANN))
    assert deal, "the rep never saw the deal of their converted lead"
    assert (deal["owner_id"], deal["team"]) == ("ann", "dach")
    assert deal["history"][0]["by"] == "ann"
    assert the_deal(MIA)["id"] == deal["id"]
    assert the_deal(BOB) is None and the_deal(CAROL) is None
    assert requests.get(f"{deals}/api/v1/deals/{deal['id']}", timeout=10,
                        headers=CAROL).status_code == 404
