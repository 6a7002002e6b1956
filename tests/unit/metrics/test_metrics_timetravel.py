"""Pure rules of time travel (metrics.timetravel), the streams' retention figure
(metrics.streamstats.age_seconds) and the projection sets of a rebuild (store.Namespace)."""
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from kit.config import setting
from metrics.domain import Rules
from metrics.store import Namespace
from metrics.streamstats import age_seconds
from metrics.timetravel import as_of, backtest, forecast
from tests.support.configs import shipped_config

ROOT = Path(__file__).resolve().parents[3]
RULES = Rules.from_config(setting(shipped_config(ROOT / "services/metrics/config.yml"), "KPIS"))
T = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def fact(seq, etype, at, **data):
    return {"id": f"e{seq}", "type": etype, "seq": seq, "time": at, **data}


def deal(did, *facts):
    return {"_id": did, "facts": list(facts)}


def opened(at, amount, currency, probability, close=None, owner="ann"):
    return fact(1, "deal.created", at, pipeline_id="default", stage="discovery",
                amount=amount, currency=currency, probability=probability,
                expected_close=close, owner_id=owner, created_at=at)


def test_as_of_keeps_the_facts_that_happened_by_then_inclusive():
    doc = deal("D", fact(1, "deal.created", T - H), fact(2, "deal.updated", T),
               fact(3, "deal.won", T + H))
    assert [f["seq"] for f in as_of(doc, T)["facts"]] == [1, 2]
    assert [f["seq"] for f in doc["facts"]] == [1, 2, 3]  # the projection is not changed


def test_forecast_rounds_once_per_row_to_the_currency_minor_unit_half_even():
    docs = [deal("J", opened(T - H, "1001", "JPY", 50, "2024-06-10")),       # 500.5 -> 500
            deal("K", opened(T - H, "0.125", "BHD", 100, "2024-06-10")),     # 3 places
            deal("E1", opened(T - H, "100.05", "EUR", 50)),                  # 50.025
            deal("E2", opened(T - H, "100.05", "EUR", 50, owner="bob"))]
    got = forecast(docs, T, RULES)
    assert [(r["month"], r["owner_id"], r["currency"], r["weighted"]) for r in got["rows"]] == [
        ("2024-06", "ann", "BHD", Decimal("0.125")), ("2024-06", "ann", "JPY", Decimal("500")),
        ("unscheduled", "ann", "EUR", Decimal("50.02")),
        ("unscheduled", "bob", "EUR", Decimal("50.02"))]
    # the total is rounded once: 100.05 (not 50.02 + 50.02)
    assert [(t["month"], t["currency"], t["weighted"], t["deals"]) for t in got["totals"]] == [
        ("2024-06", "BHD", Decimal("0.125"), 1), ("2024-06", "JPY", Decimal("500"), 1),
        ("unscheduled", "EUR", Decimal("100.05"), 2)]


def test_forecast_takes_the_deal_as_it_was_owner_and_outcome_included():
    doc = deal("D", opened(T - 2 * H, "1000.00", "EUR", 10, "2024-07-01"),
               fact(2, "deal.updated", T - H, stage="discovery", owner_id="bob",
                    amount="1000.00", currency="EUR", probability=40,
                    expected_close="2024-07-01"),
               fact(3, "deal.lost", T + H, from_stage="discovery", created_at=T - 2 * H,
                    lost_at=T + H, owner_id="bob"))
    assert [(r["owner_id"], r["weighted"]) for r in forecast([doc], T, RULES)["rows"]] == [
        ("bob", Decimal("400.00"))]
    assert forecast([doc], T - 90 * H, RULES)["rows"] == []  # not there yet
    assert forecast([doc], T + 2 * H, RULES)["rows"] == []   # lost by then


def test_backtest_counts_a_win_after_the_moment_once_and_not_one_before():
    early = deal("W0", opened(T - 5 * H, "10.00", "EUR", 50, "2024-06-15"),
                 fact(2, "deal.won", T - H, from_stage="discovery", created_at=T - 5 * H,
                      won_at=T - H, owner_id="ann"))
    late = deal("W1", opened(T - 5 * H, "200.00", "EUR", 50, "2024-06-15"),
                fact(2, "deal.won", T + 30 * 24 * H, from_stage="discovery",
                     created_at=T - 5 * H, won_at=T + 30 * 24 * H, owner_id="ann",
                     amount="250.00", currency="EUR"))
    rows = backtest([early, late], T, T + 60 * 24 * H, RULES)["rows"]
    assert [(r["month"], r["forecast_deals"], r["weighted"], r["won_deals"], r["won"],
             r["difference"]) for r in rows] == [
        ("2024-06", 1, Decimal("100.00"), 0, Decimal("0.00"), Decimal("-100.00")),
        ("2024-07", 0, Decimal("0.00"), 1, Decimal("250.00"), Decimal("250.00"))]
    # a win after `until` is not there yet
    assert [r["won_deals"] for r in backtest([late], T, T + 24 * H, RULES)["rows"]] == [0]


@pytest.mark.parametrize("text, seconds", [
    ("90D", 90 * 86400), ("1Y", 365 * 86400), ("2M", 60 * 86400), ("12h", 43200),
    ("30m", 1800), ("45s", 45), (None, None), ("", None), ("D", None), ("7W", None),
    ("1.5D", None),
])
def test_stream_max_age_in_seconds(text, seconds):
    assert age_seconds(text) == seconds


class FakeDb:
    """Just what Namespace reads of a pymongo Database."""

    name = "dealflow_metrics"
    client = None

    def __getitem__(self, name):
        return name


@pytest.mark.parametrize("name, collection, want", [
    ("dealflow_metrics", "leads", "leads"),
    ("dealflow_metrics_r1a2b3c4d", "leads", "r1a2b3c4d_leads"),
    ("dealflow_metrics_r1a2b3c4d", "snapshots", "r1a2b3c4d_snapshots"),
    # not rebuilt, so not the set's: the audit trail and the control record stay put
    ("dealflow_metrics_r1a2b3c4d", "audit", "audit"),
    ("dealflow_metrics_r1a2b3c4d", "control", "control"),
])
def test_a_projection_set_is_a_prefix_in_the_service_s_database(name, collection, want):
    space = Namespace(FakeDb(), name)
    assert space[collection] == want
    assert getattr(space, collection) == want
