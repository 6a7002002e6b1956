"""The seed's rows are valid input for the import they go through: every lead loads with the
lead schema (e-mails, phones valid for phonenumbers), every history with the history schema
and the domain's rules, a fifth converted, and the same seed gives the same rows."""
import csv
import datetime as dt
import io
from collections import Counter

import pytest

from bench import seed
from leads import csvimport, domain
from leads.imports import validate_rows

NOW = dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
TEAMS = seed.teams_from_config()


@pytest.fixture(scope="module")
def rows():
    return seed.generate(3000, NOW, TEAMS)


def test_every_row_passes_the_historical_import(rows):
    text = seed.csv_chunk(rows, "seed-pipeline").decode()
    parsed, column_errors = csvimport.parse(text, 10_000, history=True)
    assert column_errors == []
    errors, valid = validate_rows(parsed, NOW)
    assert errors == []
    assert len(valid) == len(rows)
    # in-file dedup finds no duplicate e-mail or phone
    assert len({d["email"] for _, d in valid}) == len(rows)
    phones = [d["phone"] for _, d in valid if d["phone"]]
    assert len(set(phones)) == len(phones) > 0.8 * len(rows)


def test_a_fifth_is_converted_and_deals_spread_over_stages(rows):
    statuses = Counter(r.history["status"] for r in rows)
    assert statuses["converted"] == 600
    assert set(statuses) == set(domain.HISTORY_PATHS)  # every status a history can have
    outcomes = Counter(r.deal_outcome for r in rows if r.deal_outcome)
    assert set(outcomes) == {"discovery", "needs_confirmed", "proposal", "quote_negotiation",
                             "contract_payment", "won", "lost"}


def test_names_are_chinese_and_english_and_history_spans_a_year(rows):
    names = [r.lead["name"] for r in rows]
    assert any("\u4e00" <= n[0] <= "\u9fff" for n in names)
    assert any(n[0].isascii() for n in names)
    created = [r.history["created_at"] for r in rows]
    assert min(created) < NOW - dt.timedelta(days=330) and max(created) > NOW - dt.timedelta(
        days=7)
    owners = {r.history.get("owner_id") for r in rows} - {None}
    assert owners <= {rep for reps in TEAMS.values() for rep in reps} and len(owners) > 4


def test_deal_steps_go_forward_in_the_past_and_close_with_picklist_reasons(rows):
    for row in rows:
        if not row.steps:
            continue
        times = [dt.datetime.fromisoformat(s["at"]) for s in row.steps]
        assert times == sorted(times)
        assert row.history["converted_at"] < times[0] and times[-1] < NOW
        last = row.steps[-1]
        if row.deal_outcome == "lost":
            assert last["action"] == "lost" and last["reason"] in seed.LOST_REASONS
        elif row.deal_outcome == "won":
            assert last["action"] == "won"


def test_every_deal_expects_a_close_day_and_open_ones_one_ahead(rows):
    deals = [r for r in rows if r.deal_outcome]
    assert deals and all(r.steps for r in deals)
    for row in deals:
        [close] = [s["fields"]["expected_close"] for s in row.steps
                   if s["action"] == "update" and "expected_close" in s["fields"]]
        assert row.steps[0]["action"] == "update"  # set before any move
        if row.deal_outcome in ("won", "lost"):
            assert dt.date.fromisoformat(close) > row.history["converted_at"].date()
        else:
            assert NOW.date() < dt.date.fromisoformat(close) <= (NOW + dt.timedelta(
                days=180)).date()


def test_the_same_seed_gives_the_same_rows():
    first = seed.csv_chunk(seed.generate(200, NOW, TEAMS), "p")
    assert seed.csv_chunk(seed.generate(200, NOW, TEAMS), "p") == first
    assert seed.csv_chunk(seed.generate(200, NOW, TEAMS, seed=7), "p") != first
    assert list(csv.reader(io.StringIO(first.decode())))[0] == list(seed.COLUMNS)
