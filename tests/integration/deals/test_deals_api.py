"""The deals HTTP API against real FerretDB and RabbitMQ: pipelines, gates, moves, If-Match,
events with gap-free sequences, listing and the forecast."""
import eventlet
import requests

from tests.integration.deals.deals_support import (
    Client,
    lead_converted,
    publish,
    start_deals,
    wait_for,
)
from tests.support.amqp import Subscriber
from tests.support.tokens import bearer

STAGES = ["discovery", "needs_confirmed", "proposal", "quote_negotiation",
          "contract_payment", "won", "lost"]


def test_default_pipeline_is_seeded_once(container_factory, make_config, api, mongo_db):
    config = make_config("deals")
    start_deals(container_factory, config)
    resp = api(config).get("/api/v1/pipelines")
    assert resp.status_code == 200, resp.text
    [pipeline] = resp.json()["items"]
    assert pipeline["id"] == "default"
    assert [s["key"] for s in pipeline["stages"]] == STAGES
    assert {s["key"]: s["required_fields"] for s in pipeline["stages"]}["proposal"] == \
        ["needs_summary"]
    assert mongo_db.pipelines.count_documents({}) == 1


def test_admin_creates_and_edits_a_pipeline(container_factory, make_config, api):
    config = make_config("deals")
    start_deals(container_factory, config)
    http = api(config)
    body = {"name": "Renewals", "stages": [
        {"key": "review", "name": "Review", "probability": 40, "stall_days": 5,
         "required_checklist": ["usage_reviewed"]},
        {"key": "won", "name": "Won", "probability": 100},
        {"key": "lost", "name": "Lost", "probability": 0}]}
    resp = http.post("/api/v1/pipelines", json=body)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert resp.headers["ETag"] == '"1"' and created["checklist_items"] == ["usage_reviewed"]

    bad = http.post("/api/v1/pipelines", json={**body, "stages": body["stages"][:1] * 3})
    assert bad.status_code == 400
    assert any("'won' is required" in m for m in bad.json()["errors"]["stages"])

    deal = Client(http).create(name="R1", pipeline_id=created["id"],
                               checklist=["usage_reviewed"])
    assert deal["stage"] == "review" and deal["probability"] == 40

    path = f"/api/v1/pipelines/{created['id']}"
    edited = {**body, "stages": [{**body["stages"][0], "key": "audit"}, *body["stages"][1:]]}
    assert http.put(path, json=edited).status_code == 428
    resp = http.put(path, json=edited, headers={"If-Match": '"1"'})
    assert resp.status_code == 409 and resp.json()["stages"] == ["review"]  # deal sits there
    renamed = {**body, "name": "Renewals 2"}
    resp = http.put(path, json=renamed, headers={"If-Match": '"1"'})
    assert resp.status_code == 200 and resp.json()["version"] == 2
    assert http.put(path, json=renamed, headers={"If-Match": '"1"'}).status_code == 409


def test_gates_block_moves_with_exactly_what_is_missing(container_factory, make_config, api,
                                                         rabbit_config):
    config = make_config("deals")
    sub = Subscriber(rabbit_config["AMQP_URI"], "deals", "#")
    start_deals(container_factory, config)
    client = Client(api(config))
    deal = client.create(amount="1200.00", currency="EUR", owner_id="rep-1")
    assert deal["version"] == 1

    resp = client.act(deal, "stage", {"stage": "proposal"})
    assert resp.status_code == 409, resp.text
    problem = resp.json()
    assert problem["missing_fields"] == ["needs_summary"]
    assert problem["missing_checklist"] == ["discovery_call_held"]
    assert resp.headers["Content-Type"] == "application/problem+json"

    deal = client.must(deal, "", {"checklist": {"discovery_call_held": True},
                                  "needs_summary": "3 seats, SSO"}, method="patch")
    assert deal["version"] == 2 and deal["checklist"] == ["discovery_call_held"]
    deal = client.must(deal, "stage", {"stage": "proposal"})
    assert (deal["stage"], deal["probability"], deal["version"]) == ("proposal", 50, 3)
    deal = client.must(deal, "stage", {"stage": "quote_negotiation"})

    resp = client.act(deal, "stage", {"stage": "contract_payment"})
    assert resp.status_code == 409 and resp.json()["missing_fields"] == ["accepted_quote"]

    assert client.act(deal, "lost", {}).status_code == 400           # reason required
    deal = client.must(deal, "lost", {"reason": "budget frozen"})
    assert (deal["status"], deal["lost_reason"], deal["version"]) == ("lost", "other", 6)
    assert deal["lost_reason_text"] == "budget frozen"  # free words: other + text
    assert client.act(deal, "stage", {"stage": "proposal"}).status_code == 409
    deal = client.must(deal, "reopen")
    assert (deal["status"], deal["stage"], deal["version"]) == ("open", "quote_negotiation", 7)
    # closing as won skips contract_payment: its gate applies as it does to /stage
    resp = client.act(deal, "won")
    assert resp.status_code == 409
    assert resp.json()["missing_fields"] == ["accepted_quote", "contract_signed"]
    deal = client.api.get(f"/api/v1/deals/{deal['id']}").json()
    assert [(h["from"], h["to"]) for h in deal["history"]] == [
        (None, "discovery"), ("discovery", "proposal"), ("proposal", "quote_negotiation"),
        ("quote_negotiation", "lost"), ("lost", "quote_negotiation")]

    events = sub.drain(expect=7, timeout=10)
    assert [(e["type"], e["dealflowsequence"]) for e in events] == [
        ("deal.created", 1), ("deal.updated", 2), ("deal.stage_changed", 3),
        ("deal.stage_changed", 4), ("deal.stage_changed", 5), ("deal.lost", 6),
        ("deal.stage_changed", 7)]
    assert events[2]["data"]["from"] == "discovery" and events[2]["data"]["to"] == "proposal"
    # free words are the picklist's "other" with them as the text (kit.reasons)
    assert (events[5]["data"]["reason"], events[5]["data"]["reason_text"]) == (
        "other", "budget frozen")
    sub.close()


def test_if_match_is_required_and_stale_versions_lose(container_factory, make_config, api):
    config = make_config("deals")
    start_deals(container_factory, config)
    http = api(config)
    client = Client(http)
    deal = client.create()
    path = f"/api/v1/deals/{deal['id']}/stage"

    resp = http.post(path, json={"stage": "needs_confirmed"})
    assert resp.status_code == 428, resp.text
    resp = http.patch(f"/api/v1/deals/{deal['id']}", json={"name": "B"})
    assert resp.status_code == 428

    client.must(deal, "", {"name": "Acme 2"}, method="patch")
    resp = client.act(deal, "", {"name": "Acme 3"}, method="patch")  # still If-Match: "1"
    assert resp.status_code == 409 and resp.json()["current_version"] == 2
    got = http.get(f"/api/v1/deals/{deal['id']}")
    assert got.headers["ETag"] == '"2"' and got.json()["name"] == "Acme 2"


def test_concurrent_moves_with_one_version_exactly_one_wins(container_factory, make_config,
                                                             api, rabbit_config):
    config = make_config("deals")
    sub = Subscriber(rabbit_config["AMQP_URI"], "deals", "#")
    start_deals(container_factory, config)
    http = api(config)
    client = Client(http)
    deals = [client.create(name=f"D{i}", amount="10", currency="EUR") for i in range(5)]
    url = http.base + "/api/v1/deals/{}/{}"

    def attempt(deal, n):
        # fresh connections so the requests really overlap
        if n % 2:
            return requests.post(url.format(deal["id"], "lost"), json={"reason": f"r{n}"},
                                 headers={"If-Match": '"1"', **bearer()}, timeout=10)
        return requests.patch(url.format(deal["id"], "").rstrip("/"), json={"name": f"n{n}"},
                              headers={"If-Match": '"1"', **bearer()}, timeout=10)

    pool = eventlet.GreenPool(40)
    results = {}
    for deal in deals:
        results[deal["id"]] = [pool.spawn(attempt, deal, n) for n in range(8)]
    pool.waitall()
    for deal in deals:
        statuses = sorted(r.wait().status_code for r in results[deal["id"]])
        assert statuses == [200] + [409] * 7, statuses
        final = http.get(f"/api/v1/deals/{deal['id']}").json()
        assert final["version"] in (2, 3)  # one PATCH (1 event) or one loss (2 events)

    events = sub.drain(expect=5 + sum(1 for _ in deals), timeout=10)
    events += sub.drain(timeout=1)
    for deal in deals:
        seqs = sorted(e["dealflowsequence"] for e in events if e["subject"] == deal["id"])
        assert seqs == list(range(1, len(seqs) + 1)), seqs
    sub.close()


def test_list_by_lead_and_cursor_pages(container_factory, make_config, api):
    config = make_config("deals")
    start_deals(container_factory, config)
    http = api(config)
    client = Client(http)
    mine = client.create(name="from lead", lead_id="lead-7")
    again = http.post("/api/v1/deals", json={"name": "dup", "lead_id": "lead-7"})
    assert again.status_code == 409 and again.json()["existing_id"] == mine["id"]
    for i in range(4):
        client.create(name=f"other {i}", owner_id="rep-2")

    resp = http.get("/api/v1/deals", params={"lead_id": "lead-7"})
    assert [d["id"] for d in resp.json()["items"]] == [mine["id"]]

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = http.get("/api/v1/deals", params=params).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 5 == len(set(seen))
    assert http.get("/api/v1/deals", params={"cursor": "zz"}).status_code == 400
    assert len(http.get("/api/v1/deals", params={"owner_id": "rep-2"}).json()["items"]) == 4


def test_an_accounts_deals_are_listed_by_its_id(container_factory, make_config, api,
                                                 rabbit_config):
    config = make_config("deals")
    start_deals(container_factory, config)
    http = api(config)
    # deals get their account from the lead's conversion (leads matched the company)
    publish(rabbit_config["AMQP_URI"],
            lead_converted("lead-1", account_id="acct-1"),
            lead_converted("lead-2", account_id="acct-2"),
            lead_converted("lead-3", account_id="acct-1", owner_id="rep-2"))

    def of(**params):
        resp = http.get("/api/v1/deals", params=params)
        assert resp.status_code == 200, resp.text
        return [d["lead_id"] for d in resp.json()["items"]]
    assert wait_for(lambda: len(of(account_id="acct-1")) == 2)
    assert sorted(of(account_id="acct-1")) == ["lead-1", "lead-3"]  # (handled concurrently)
    assert of(account_id="acct-1", owner_id="rep-2") == ["lead-3"]
    assert of(account_id="acct-9") == []


def test_forecast_over_http(container_factory, make_config, api):
    config = make_config("deals")
    start_deals(container_factory, config)
    http = api(config)
    client = Client(http)
    client.create(amount="1000.00", currency="EUR", expected_close="2025-05-20",
                  owner_id="rep-1")                                     # 10 %
    deal = client.create(amount="333.33", currency="EUR", expected_close="2025-05-02",
                         owner_id="rep-1", checklist=["discovery_call_held"])
    client.must(deal, "stage", {"stage": "needs_confirmed"})            # 25 %
    lost = client.create(amount="5000", currency="EUR", expected_close="2025-05-02")
    client.must(lost, "lost", {"reason": "no fit"})                     # not open: left out
    client.create(amount="10", currency="EUR")                          # no close date

    resp = http.get("/api/v1/forecast", params={"period": "month"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["rows"] == [{"period": "2025-05", "owner_id": "rep-1", "currency": "EUR",
                             "deals": 2, "weighted": "183.33", "best_case": "1333.33"}]
    assert body["unplaced"] == 1
    assert http.get("/api/v1/forecast", params={"period": "week"}).status_code == 400

    # a window of close dates (both ends included) reads only the deals in it
    def window(**params):
        resp = http.get("/api/v1/forecast", params=params)
        assert resp.status_code == 200, resp.text
        return [(r["period"], r["deals"], r["best_case"]) for r in resp.json()["rows"]], \
            resp.json()["unplaced"]
    assert window(close_from="2025-05-03") == ([("2025-05", 1, "1000.00")], 0)
    assert window(close_to="2025-05-02") == ([("2025-05", 1, "333.33")], 0)
    assert window(close_from="2025-05-02", close_to="2025-05-20") == \
        ([("2025-05", 2, "1333.33")], 0)
    assert window(close_from="2025-06-01") == ([], 0)
    assert window(close_from="2025-01-01", period="quarter") == ([("2025-Q2", 2, "1333.33")], 0)
    for params, field in (({"close_from": "2025-05-21", "close_to": "2025-05-20"}, "close_to"),
                          ({"close_from": "2025-13-01"}, "close_from"),
                          ({"close_to": "soon"}, "close_to")):
        resp = http.get("/api/v1/forecast", params=params)
        assert resp.status_code == 400 and field in resp.json()["errors"], resp.text


def test_bad_input_is_a_400_and_writes_nothing(container_factory, make_config, api, mongo_db):
    config = make_config("deals")
    start_deals(container_factory, config)
    http = api(config)
    for body in ({"name": ""}, {"name": "x", "amount": "ten", "currency": "EUR"},
                 {"name": "x", "currency": "XXY"}, {"name": "x", "amount": "5"},
                 {"name": "x", "pipeline_id": "nope"}, {"name": "x", "custom": {"a.b": 1}}):
        resp = http.post("/api/v1/deals", json=body)
        assert resp.status_code == 400, (body, resp.text)
    assert mongo_db.deals.count_documents({}) == 0
    assert wait_for(lambda: http.get("/api/v1/deals/nope").status_code == 404)


def test_openapi_documents_the_routes(container_factory, make_config, api):
    config = make_config("deals")
    start_deals(container_factory, config)
    resp = api(config).get("/openapi.json")
    assert resp.status_code == 200, resp.text
    paths = resp.json()["paths"]
    for path in ("/api/v1/pipelines", "/api/v1/deals", "/api/v1/deals/{id}",
                 "/api/v1/deals/{id}/stage", "/api/v1/deals/{id}/won",
                 "/api/v1/deals/{id}/lost", "/api/v1/deals/{id}/reopen", "/api/v1/forecast"):
        assert path in paths, path
    assert "428" in paths["/api/v1/deals/{id}/stage"]["post"]["responses"]
