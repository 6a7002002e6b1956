"""`make seed` against the platform as processes: a small seed (N=300) lands whole through
the public APIs, the lists and metrics agree with what it generated, and a second run
stores nothing twice."""
import datetime as dt
from collections import Counter

import requests

from bench import seed
from tests.e2e.sales import poll
from tests.e2e.test_funnel_agreement import LEAD_STAGE, count
from tests.e2e.test_sales_flow import samples

N = 300



def test_a_small_seed_loads_whole_and_metrics_agree(sales_platform):
    platform = sales_platform
    leads, deals = platform.urls["leads"], platform.urls["deals"]
    now = dt.datetime.now(dt.UTC)
    report = seed.seed(N, leads, deals, now=now, log=lambda _: None)
    rows = seed.generate(N, now.replace(hour=0, minute=0, second=0, microsecond=0),
                         seed.teams_from_config())
    statuses = Counter(r.history["status"] for r in rows)
    outcomes = Counter(r.deal_outcome for r in rows if r.deal_outcome)
    assert report["leads"]["created"] == N and report["leads"]["invalid"] == 0
    histories = sum(1 for r in rows if r.steps)  # a deal still in discovery has none
    assert report["converted"] == N // 5 and report["deal_histories"] == histories
    assert report["deals"] == {"applied": histories, "stale": 0, "refused": 0}

    leads_url, deals_url = leads + "/api/v1/leads", deals + "/api/v1/deals"
    assert count(leads_url) == N
    for status, n in statuses.items():
        assert count(leads_url, status=status) == n, status
    assert count(deals_url, pipeline_id=report["pipeline_id"]) == N // 5
    assert count(deals_url, status="won") == outcomes["won"]
    assert count(deals_url, status="lost") == outcomes["lost"]
    assert count(deals_url, status="open", stage="proposal") == outcomes["proposal"]
    # every open deal expects a close day ahead: the forecast places them in its months
    still_open = sum(n for outcome, n in outcomes.items() if outcome not in ("won", "lost"))
    forecast = requests.get(deals + "/api/v1/forecast",
                            params={"pipeline_id": report["pipeline_id"]}, timeout=10).json()
    assert sum(t["deals"] for t in forecast["totals"]) + forecast["unplaced"] == still_open
    assert forecast["unplaced"] < still_open / 5  # only those converted without an amount
    assert min(t["period"] for t in forecast["totals"]) >= f"{now.year}-{now.month:02d}"

    want = {("dealflow_funnel_current", (("stage", stage),)): float(statuses[status])
            for status, stage in LEAD_STAGE.items()}
    want[("dealflow_deals_closed", (("outcome", "won"),))] = float(outcomes["won"])
    want[("dealflow_deals_closed", (("outcome", "lost"),))] = float(outcomes["lost"])

    def agreed():
        got = samples(platform.urls["metrics"])
        return {k: got.get(k) for k in want}

    got = poll(lambda: agreed() == want and agreed(), timeout=90)
    assert got == want, agreed()

    again = seed.seed(N, leads, deals, now=now, log=lambda _: None)
    assert (again["leads"]["replayed"], again["leads"]["created"]) == (1, N)  # chunks, rows
    assert again["deals"] == {"applied": 0, "stale": histories, "refused": 0}
    assert count(leads_url) == N and count(deals_url) == N // 5
