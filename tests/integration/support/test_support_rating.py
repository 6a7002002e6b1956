"""CSAT: a resolved ticket's signed rating link takes one 1-5 rating with a comment per
resolution (ticket.rated); a reused, altered, foreign or outdated link gets a clear 4xx
and writes nothing. The same link opened with GET (a customer's click, a mail scanner's
look) shows what it can still do and writes nothing either."""
import pytest

from tests.integration.support.support_helpers import (
    AGENTS,
    move,
    open_ticket,
    start_support,
    support_config,
)
from tests.support.amqp import Subscriber


@pytest.fixture
def resolved(container_factory, make_config, api):
    config = support_config(make_config, **AGENTS)
    start_support(container_factory, config)
    http = api(config)
    ticket = open_ticket(http)
    assert move(http, ticket, "resolved").status_code == 200
    return http, ticket


def link(http, ticket):
    resp = http.get(f"/api/v1/tickets/{ticket['id']}/rating-link")
    assert resp.status_code == 200, resp.text
    return resp.json()


def rate(http, ticket_id, token, score=5, comment="quick and kind"):
    return http.post(f"/api/v1/tickets/{ticket_id}/rating", params={"token": token},
                     json={"score": score, "comment": comment})


def view(http, ticket_id, token):
    return http.get(f"/api/v1/tickets/{ticket_id}/rating", params={"token": token})


def test_the_link_opens_a_view_that_follows_the_ticket_and_writes_nothing(resolved, mongo_db):
    http, ticket = resolved
    given = link(http, ticket)
    # (the relay may clear the outbox of the resolve meanwhile: that is not the view's)
    lean = {"outbox": 0, "outbox_since": 0}
    before = mongo_db.tickets.find_one({"_id": ticket["id"]}, lean)
    opened = view(http, ticket["id"], given["token"])
    assert opened.status_code == 200, opened.text
    body = opened.json()
    assert (body["ticket_id"], body["resolution"], body["state"]) == (ticket["id"], 1, "ratable")
    assert body["subject"] == ticket["subject"] and body["expires_at"].endswith("Z")
    assert view(http, ticket["id"], given["token"]).json() == body  # a scanner's second look
    assert mongo_db.tickets.find_one({"_id": ticket["id"]}, lean) == before
    assert rate(http, ticket["id"], given["token"]).status_code == 201
    assert view(http, ticket["id"], given["token"]).json()["state"] == "rated"
    # reopened and resolved again: an unused link of the first resolution is outdated
    unused = link(http, ticket)["token"]
    assert move(http, ticket, "open").status_code == 200
    assert move(http, ticket, "resolved").status_code == 200
    assert view(http, ticket["id"], unused).json()["state"] == "rated"  # resolution 1 is
    fresh = link(http, ticket)["token"]
    assert view(http, ticket["id"], fresh).json()["resolution"] == 2
    assert move(http, ticket, "open").status_code == 200
    assert view(http, ticket["id"], fresh).json()["state"] == "reopened"


def test_the_view_needs_its_token(resolved):
    http, ticket = resolved
    resp = http.get(f"/api/v1/tickets/{ticket['id']}/rating")
    assert resp.status_code == 400 and "token" in resp.json()["errors"]
    assert view(http, "T-none", link(http, ticket)["token"]).status_code == 403


def test_a_link_rates_once(resolved, rabbit_config, mongo_db):
    http, ticket = resolved
    sub = Subscriber(rabbit_config["AMQP_URI"], "support", "ticket.rated")
    given = link(http, ticket)
    assert given["resolution"] == 1 and given["url"].endswith(given["token"])
    assert f"/api/v1/tickets/{ticket['id']}/rating?token=" in given["url"]
    first = rate(http, ticket["id"], given["token"])
    assert first.status_code == 201
    assert first.json() == {"ticket_id": ticket["id"], "score": 5,
                            "comment": "quick and kind", "resolution": 1}
    again = rate(http, ticket["id"], given["token"], score=1)
    assert again.status_code == 409 and again.json()["kind"] == "used"
    # another link for the same resolution does not rate it twice either
    other = rate(http, ticket["id"], link(http, ticket)["token"], score=1)
    assert other.status_code == 409 and other.json()["title"] == "Already rated"
    [event] = sub.drain(expect=1, timeout=10)
    assert (event["data"]["score"], event["data"]["resolution"]) == (5, 1)
    assert event["actor"].startswith("customer:") and "token" not in str(event)
    assert mongo_db.tickets.find_one({"_id": ticket["id"]})["rated"] == [1]
    assert mongo_db.tickets.find_one({"_id": ticket["id"]})["used_links"] == [
        event["actor"].removeprefix("customer:")]
    sub.close()


@pytest.mark.parametrize("alter", [
    lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
    lambda token: "k9" + token[2:],
    lambda token: token.split(".", 1)[1],
    lambda token: "garbage",
])
@pytest.mark.parametrize("follow", [rate, view], ids=["rate", "view"])
def test_altered_links_are_refused(resolved, mongo_db, alter, follow):
    http, ticket = resolved
    resp = follow(http, ticket["id"], alter(link(http, ticket)["token"]))
    assert resp.status_code == 403
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert resp.json()["kind"] in ("tampered", "unknown_key")
    assert mongo_db.tickets.find_one({"_id": ticket["id"]})["rated"] == []


def test_a_link_rates_only_its_ticket_and_resolution(resolved, mongo_db):
    http, ticket = resolved
    token = link(http, ticket)["token"]
    other = open_ticket(http)
    foreign = rate(http, other["id"], token)
    assert foreign.status_code == 403 and "another ticket" in foreign.json()["detail"]
    # reopened: the first resolution's link is outdated; the second resolution gets its own
    assert move(http, ticket, "open").status_code == 200
    assert rate(http, ticket["id"], token).status_code == 409
    assert http.get(f"/api/v1/tickets/{ticket['id']}/rating-link").status_code == 409
    assert move(http, ticket, "resolved").status_code == 200
    assert rate(http, ticket["id"], token).status_code == 409
    second = link(http, ticket)
    assert second["resolution"] == 2
    assert rate(http, ticket["id"], second["token"], score=3).status_code == 201
    assert mongo_db.tickets.find_one({"_id": ticket["id"]})["rated"] == [2]


@pytest.mark.parametrize("body, field", [
    ({"score": 0}, "score"), ({"score": 6}, "score"), ({"score": "5"}, "score"),
    ({"score": 4.5}, "score"), ({}, "score"), ({"score": 4, "comment": "x" * 2001}, "comment"),
])
def test_bad_ratings_are_refused(resolved, mongo_db, body, field):
    http, ticket = resolved
    resp = http.post(f"/api/v1/tickets/{ticket['id']}/rating",
                     params={"token": link(http, ticket)["token"]}, json=body)
    assert resp.status_code == 400 and field in resp.json()["errors"]
    assert mongo_db.tickets.find_one({"_id": ticket["id"]})["rated"] == []


def test_an_expired_link_is_gone(container_factory, make_config, api, mongo_db):
    config = support_config(make_config, **AGENTS, CSAT={"max_age_days": 0})
    start_support(container_factory, config)
    http = api(config)
    ticket = open_ticket(http)
    assert move(http, ticket, "resolved").status_code == 200
    token = link(http, ticket)["token"]
    for resp in (rate(http, ticket["id"], token), view(http, ticket["id"], token)):
        assert resp.status_code == 410 and resp.json()["kind"] == "expired"
    assert mongo_db.tickets.find_one({"_id": ticket["id"]})["rated"] == []
