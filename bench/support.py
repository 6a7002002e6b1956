"""Support: tickets opened and dispatched per second over HTTP with 10 concurrent clients.

Each POST /api/v1/tickets is an insert carrying ticket.opened, a read of the roster, a
conditional claim on the chosen agent's load document (guarded by load < capacity) and the
ticket's versioned write carrying ticket.assigned: the whole auto-dispatch path. Twenty
agents take any category with room for every ticket, so each one is dispatched at once;
the figure says how many were.
"""
import requests
from pymongo import MongoClient

from bench.harness import bearer

CLIENTS = 10
DURATION = 8.0
AGENTS = 20

RATIOS = {"tickets_opened_per_s": "http_healthz_per_s",
          "tickets_opened_per_s_vs_mongo": "mongo_update_by_id_per_s"}


def run(ctx):
    db_name = ctx.new_database("support")
    base = ctx.start_service("support", MONGO_DATABASE=db_name, SUPPORT_DISPATCH_SECONDS=3600)
    with requests.Session() as session:
        session.headers.update(bearer())
        for n in range(AGENTS):
            session.put(f"{base}/api/v1/agents/bench-{n}", json={
                "skills": ["*"], "capacity": 1000, "available": True},
                timeout=30).raise_for_status()

    result = ctx.http_load("POST", f"{base}/api/v1/tickets", clients=CLIENTS,
                           duration=DURATION, ok=(201,), json_fn=lambda i, t: {
                               "account": f"Account {t}", "subject": f"bench {i}",
                               "channel": "web", "priority": "normal",
                               "category": "billing"})
    mongo = MongoClient(ctx.mongo_uri)
    tickets = mongo[db_name].tickets
    dispatched = tickets.count_documents({"assignee": {"$ne": None}})
    total = tickets.count_documents({})
    mongo.close()
    return {
        "tickets_opened_per_s": result["rps"],
        "tickets_opened_per_s_vs_mongo": result["rps"],
        "ticket_open_p50_ms": result["p50_ms"],
        "ticket_open_p99_ms": result["p99_ms"],
        "tickets_opened": total,
        "tickets_dispatched_at_once": dispatched,
        "ticket_open_errors": result["errors"],
    }
