"""Steps of a sales flow over HTTP, shared by the end-to-end tests."""
import requests

from tests.integration.deals.deals_support import contract_signed, publish, quote_accepted
from tests.support.wait import wait_for


def poll(fn, timeout=30.0):
    return wait_for(fn, timeout, interval=0.2)


def deal_action(deals, deal, action="", body=None, method="post"):
    path = f"{deals}/api/v1/deals/{deal['id']}" + (f"/{action}" if action else "")
    resp = requests.request(method, path, json=body or {}, timeout=10,
                            headers={"If-Match": f'"{deal["version"]}"'})
    assert resp.status_code == 200, resp.text
    return resp.json()


def meet_every_gate(deals, amqp_uri, deal):
    """Tick the checklist, write the needs, accept a quote and sign its contract (as the
    quotes service would announce them), so that the deal may be closed as won from any
    stage."""
    deal = deal_action(deals, deal, "", {"checklist": {"discovery_call_held": True},
                                         "needs_summary": "3 seats, SSO"}, method="patch")
    publish(amqp_uri, quote_accepted(deal["id"], total=deal["amount"] or "1000.00",
                                     currency=deal["currency"] or "EUR",
                                     quote_id=f"q-{deal['id']}"),
            contract_signed(deal["id"], total=deal["amount"] or "1000.00",
                            currency=deal["currency"] or "EUR", quote_id=f"q-{deal['id']}",
                            contract_id=f"c-{deal['id']}"))

    def accepted():
        got = requests.get(f"{deals}/api/v1/deals/{deal['id']}", timeout=5).json()
        return got if got["accepted_quote"] and got["contract_signed"] else None

    deal = poll(accepted)
    assert deal, "the accepted quote never reached the deal"
    return deal
