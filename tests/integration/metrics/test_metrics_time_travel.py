"""Time travel in metrics on real RabbitMQ and FerretDB: the cohort funnel and the weighted
forecast `as_of` a past moment equal what the service answered at that moment (recorded
then, before the rest of the history arrived); the forecast back-test of a scripted
history per month, owner and currency; bad `as_of`/`until` values are 400 problems."""
import datetime as dt
from decimal import Decimal

import pytest

from kit.events import new_event
from tests.integration.metrics import metrics_script as script
from tests.integration.metrics.test_metrics_projections import kpis, metrics, settle  # noqa: F401
from tests.integration.metrics.test_metrics_snapshots import WINDOWS

MOMENT = script.T0 + 3 * script.D  # D1 entered quote_negotiation then; D3 was lost then
GAUGE = "dealflow_forecast_weighted_amount"


def funnels(client, as_of=None):
    out = []
    for start, end in WINDOWS:
        for pipeline in (None, script.CUSTOM):
            params = {"from": start.isoformat(), "to": end.isoformat()}
            if pipeline:
                params["pipeline"] = pipeline
            if as_of:
                params["as_of"] = as_of.isoformat()
            resp = client.get("/api/v1/funnel", params=params)
            assert resp.status_code == 200, resp.text
            body = resp.json()
            # the all-time totals are the live answer's only: null as of a past moment
            assert (body["totals"] is None) == bool(as_of)
            out.append({k: v for k, v in body.items() if k not in ("as_of", "totals")})
    return out


def forecast(client, as_of=None):
    resp = client.get("/api/v1/forecast",
                      params={"as_of": as_of.isoformat()} if as_of else {})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return body["rows"], body["totals"]


def test_as_of_answers_match_what_was_recorded_at_that_moment(metrics, publish):  # noqa: F811
    events = script.build()
    before = [e for e in events if dt.datetime.fromisoformat(e["time"]) <= MOMENT]
    after = [e for e in events if dt.datetime.fromisoformat(e["time"]) > MOMENT]
    assert before and after
    _, client, _ = metrics()
    publish(before)
    settle(client, len(before), 0)
    recorded_funnels, recorded_forecast = funnels(client), forecast(client)
    gauge = {dict(labels)["currency"] + "/" + dict(labels)["month"]: value
             for (name, labels), value in kpis(client).items() if name == GAUGE}

    publish(after)
    settle(client, len(events), 0)
    assert funnels(client) != recorded_funnels  # the history moved on
    assert funnels(client, as_of=MOMENT) == recorded_funnels
    rows, totals = forecast(client, as_of=MOMENT)
    assert (rows, totals) == recorded_forecast
    # D1 (EUR 1000 at 60 %, no close date) and D2 (EUR 5000 at 50 %, June) were open
    weighted = {t["currency"] + "/" + t["month"]: Decimal(t["weighted"]) for t in totals}
    assert weighted == {"EUR/unscheduled": Decimal("600"), "EUR/2024-06": Decimal("2500")}
    # a Prometheus sample is a float64: the gauge carries the same amounts, as floats
    assert gauge == {key: float(amount) for key, amount in weighted.items()}


# --- the back-test ---------------------------------------------------------------------------

AS_OF = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
UNTIL = dt.datetime(2024, 8, 1, tzinfo=dt.UTC)


def _day(month, day):
    return dt.datetime(2024, month, day, 10, tzinfo=dt.UTC)


class Deals:
    def __init__(self):
        self.events, self.seq = [], {}

    def add(self, etype, did, data, at):
        self.seq[did] = self.seq.get(did, 0) + 1
        self.events.append(new_event(etype, did, {"deal_id": did, "pipeline_id": "default",
                                                  **data}, self.seq[did], time=at))

    def open(self, did, owner, amount, currency, probability, close, at):
        self.add("deal.created", did, {
            "stage": "discovery", "name": did, "owner_id": owner, "amount": Decimal(amount),
            "currency": currency, "probability": probability, "expected_close": close,
            "created_at": at}, at)

    def move(self, did, owner, amount, currency, probability, close, at):
        self.add("deal.stage_changed", did, {
            "from_stage": "discovery", "to_stage": "proposal", "owner_id": owner,
            "amount": Decimal(amount), "currency": currency, "probability": probability,
            "expected_close": close, "changed_at": at}, at)

    def close(self, did, owner, amount, currency, created, at, won=True):
        data = {"from_stage": "discovery", "owner_id": owner, "amount": Decimal(amount),
                "currency": currency, "created_at": created}
        if won:
            self.add("deal.won", did, {**data, "won_at": at}, at)
        else:
            self.add("deal.lost", did, {**data, "reason": "price", "lost_at": at}, at)


def backtest_history():
    h = Deals()
    june, july = dt.date(2024, 6, 20), dt.date(2024, 7, 15)
    # ann: A1 forecast for June and won in June; A2 forecast for June, lost; A3 won in May
    h.open("A1", "ann", "1000.00", "EUR", 50, june, _day(5, 10))
    h.close("A1", "ann", "1000.00", "EUR", _day(5, 10), _day(6, 18))
    h.open("A2", "ann", "2000.00", "EUR", 25, dt.date(2024, 6, 30), _day(5, 12))
    h.close("A2", "ann", "2000.00", "EUR", _day(5, 12), _day(6, 25), won=False)
    h.open("A3", "ann", "800.00", "EUR", 90, june, _day(5, 1))
    h.close("A3", "ann", "800.00", "EUR", _day(5, 1), _day(5, 25))
    # bob: B1 forecast for July at 10 %, raised after the moment, won in July for more;
    # B2 (JPY, no minor unit) still open; B3 opened after the moment, won in June;
    # B4 USD 333.33 at 33 % (109.9989 -> 110.00)
    h.open("B1", "bob", "3000.00", "EUR", 10, july, _day(5, 20))
    h.move("B1", "bob", "3300.00", "EUR", 60, july, _day(6, 10))
    h.close("B1", "bob", "3300.00", "EUR", _day(5, 20), _day(7, 2))
    h.open("B2", "bob", "100000", "JPY", 33, dt.date(2024, 6, 5), _day(5, 1))
    h.open("B3", "bob", "500.00", "EUR", 40, june, _day(6, 3))
    h.close("B3", "bob", "500.00", "EUR", _day(6, 3), _day(6, 20))
    h.open("B4", "bob", "333.33", "USD", 33, july, _day(5, 2))
    return h.events


def _row(month, owner, currency, forecast_deals, weighted, best_case, won_deals, won, diff):
    return {"month": month, "owner_id": owner, "currency": currency,
            "forecast_deals": forecast_deals, "weighted": weighted, "best_case": best_case,
            "won_deals": won_deals, "won": won, "difference": diff}


BACKTEST = [
    _row("2024-06", "ann", "EUR", 2, "1000.00", "3000.00", 1, "1000.00", "0.00"),
    _row("2024-06", "bob", "EUR", 0, "0.00", "0.00", 1, "500.00", "500.00"),
    _row("2024-06", "bob", "JPY", 1, "33000", "100000", 0, "0", "-33000"),
    _row("2024-07", "bob", "EUR", 1, "300.00", "3000.00", 1, "3300.00", "3000.00"),
    _row("2024-07", "bob", "USD", 1, "110.00", "333.33", 0, "0.00", "-110.00"),
]


def test_forecast_backtest_per_month_owner_and_currency(metrics, publish):  # noqa: F811
    events = backtest_history()
    _, client, _ = metrics()
    publish(events)
    settle(client, len(events), 0)
    resp = client.get("/api/v1/forecast/backtest",
                      params={"as_of": AS_OF.isoformat(), "until": UNTIL.isoformat()})
    assert resp.status_code == 200, resp.text
    assert resp.json()["rows"] == BACKTEST
    # wins after `until` do not count yet: B1 was won on 2 July
    early = client.get("/api/v1/forecast/backtest", params={
        "as_of": AS_OF.isoformat(), "until": "2024-07-01T00:00:00+00:00"}).json()["rows"]
    assert [r["won"] for r in early if r["owner_id"] == "bob" and r["currency"] == "EUR"] \
        == ["500.00", "0.00"]
    rows, _ = forecast(client, as_of=AS_OF)
    assert [(r["month"], r["owner_id"], r["currency"], r["weighted"]) for r in rows] == [
        ("2024-06", "ann", "EUR", "1000.00"), ("2024-06", "bob", "JPY", "33000"),
        ("2024-07", "bob", "EUR", "300.00"), ("2024-07", "bob", "USD", "110.00")]


@pytest.mark.parametrize("path, params, field", [
    ("/api/v1/funnel", {"as_of": "2024-06-01T00:00:00"}, "as_of"),
    ("/api/v1/funnel", {"as_of": "last tuesday"}, "as_of"),
    ("/api/v1/funnel", {"as_of": "2999-01-01T00:00:00Z"}, "as_of"),
    ("/api/v1/forecast", {"as_of": "2024-06-01T00:00:00"}, "as_of"),
    ("/api/v1/forecast", {"as_of": "2999-01-01T00:00:00Z"}, "as_of"),
    ("/api/v1/forecast/backtest", {}, "as_of"),
    ("/api/v1/forecast/backtest", {"as_of": "2024-06-01T00:00:00"}, "as_of"),
    ("/api/v1/forecast/backtest", {"as_of": "2024-06-01T00:00:00Z",
                                   "until": "2024-07-01T00:00:00"}, "until"),
    ("/api/v1/forecast/backtest", {"as_of": "2024-06-01T00:00:00Z",
                                   "until": "2024-05-01T00:00:00Z"}, "until"),
    ("/api/v1/forecast/backtest", {"as_of": "2024-06-01T00:00:00Z",
                                   "until": "2999-01-01T00:00:00Z"}, "until"),
])
def test_bad_moments_are_400_problems(metrics, path, params, field):  # noqa: F811
    _, client, _ = metrics()
    resp = client.get(path, params=params)
    assert resp.status_code == 400, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert field in resp.json()["errors"], resp.json()
