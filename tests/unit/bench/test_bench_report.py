"""The bench's pure parts: ratios to the anchors of the same run, targets met or not (the
issue's "2 instances >= 1.3 x 1, or the database at >= 90 %"), number formatting, the
README table between its markers, percentiles, database command rates, the profile
summary and the lead-to-KPI latency matching."""
import os

import pytest

from bench import pipeline, profiles, report
from bench.harness import CpuUse, command_rates, percentile


def figures(**sections):
    return {name: {"figures": values} for name, values in sections.items()}


def base_report(**more):
    return {"when": "2026-11-27T17:00:00Z", "seconds": 512.3,
            "raw": {"hop_events_per_s": 800, "hop_p99_ms": 4.0, "nameko_http_per_s": 1000,
                    "mongo_update_by_id_per_s": 1000, "nameko_start_s": 0.5},
            **figures(metrics={"events_applied_per_s": 400, "events_applied_per_s_2": 600,
                               "db_write_ops_per_s_2": 100},
                      leads={"leads_created_per_s": 600},
                      deals={"stage_moves_per_s": 100, "stage_moves_per_s_2": 110,
                             "db_write_ops_per_s_2": 950},
                      pipeline={"lead_to_metrics_p99_ms": 80.0},
                      startup={"bare_start_s": 0.5, "leads_start_s": 1.5}),
            "processes": {"start": {"leads#1": 1.5, "leads#2": 0.9},
                          "rss": {"leads#1": 160.2, "leads#2": 70.0}},
            **more}


def row(rows, what):
    return next(r for r in rows if r[0] == what)


@pytest.mark.parametrize("value, anchor, expected", [
    (400, 800, 0.5), (1, 3, 0.333), (None, 800, None), (400, 0, None), (400, None, None)])
def test_ratio(value, anchor, expected):
    assert report.ratio(value, anchor) == expected


@pytest.mark.parametrize("value, comparison, target, expected", [
    (1.0, ">=", 1.0, True), (0.99, ">=", 1.0, False), (15, "<=", 15, True),
    (15.1, "<=", 15, False), (None, ">=", 1.0, None)])
def test_meets(value, comparison, target, expected):
    assert report.meets(value, comparison, target) is expected


@pytest.mark.parametrize("value, text", [
    (1234.5, "1,234"), (56.78, "56.8"), (0.8912, "0.891"), (True, "yes"), (False, "NO"),
    (None, "n/a"), ("x", "x"), ([[1, 2], [3]], "1, 2, 3"), ([None, 97], "n/a, 97.0")])
def test_fmt(value, text):
    assert report.fmt(value) == text


def test_each_figure_is_a_ratio_to_its_anchor_against_the_issue_target():
    rows = report.rows(base_report())
    assert row(rows, "metrics: events applied/s, full run")[3:] == [0.5, "≥ 1.0", False]
    assert row(rows, "leads created over HTTP, 10 clients")[3:] == [0.6, "≥ 0.5", True]
    assert row(rows, "deal stage moves, 10 clients")[3] == 0.1
    assert row(rows, "p99 ms, POST lead to counted in /metrics at half the sustainable "
                     "rate")[3:] == [20.0, "≤ 15", False]
    assert row(rows, "leads: start to /readyz, median (s)")[3:] == [3.0, "≤ 2.0", False]
    assert row(rows, "deals: start to /readyz, median (s)")[1:4] == [
        None, "0.5 (startup.bare_start_s)", None]
    assert row(rows, "leads: resident memory after the bench, largest of 2 (MB)")[1:] == [
        160.2, "", None, "≤ 150 MB", False]


def test_scale_out_counts_as_met_when_the_database_is_at_its_limit():
    rows = report.rows(base_report())
    deals = row(rows, "deals: 2 instances vs 1, moves/s")
    assert deals[3] == 1.1 and deals[5] is True and "database" in deals[4]
    metrics = row(rows, "metrics: 2 instances vs 1, events/s")
    assert metrics[3] == 1.5 and metrics[5] is True  # on its own ratio
    assert row(rows, "metrics, 2 instances: database writes/s vs raw update")[5] is False


def test_a_figure_the_run_did_not_measure_reads_n_a():
    text = report.markdown({"raw": {}})
    assert "| metrics: events applied/s, full run | n/a |" in text
    assert report.NOTE in text


def test_markdown_table_has_one_line_per_target_and_anchor():
    text = report.markdown(base_report())
    table = [line for line in text.splitlines() if line.startswith("| ")]
    # a header line each, the targets, the starts, one service's memory, the scale-out
    # phases, the anchors
    assert len(table) == (1 + len(report.TARGETS) + len(report.STARTED) + 1
                          + 1 + 2 * len(report.SCALE) + 1 + len(report.ANCHORS))
    assert "| deals | 2 | 110 | n/a | 950 | n/a |" in text
    assert "| leads created over HTTP, 10 clients | 600 | 1,000 (raw.nameko_http_per_s) " \
           "| 0.6 × | ≥ 0.5 | yes |" in text


def test_replace_table_swaps_what_stands_between_the_markers_only():
    text = f"intro\n{report.BEGIN}\nold\n{report.END}\noutro\n"
    assert report.replace_table(text, "new\n") == \
        f"intro\n{report.BEGIN}\nnew\n{report.END}\noutro\n"


def test_replace_table_refuses_a_text_without_markers():
    with pytest.raises(ValueError, match="bench:begin"):
        report.replace_table("no markers", "new\n")


@pytest.mark.parametrize("q, expected", [(0, 1), (50, 3), (99, 5), (100, 5)])
def test_percentile(q, expected):
    assert percentile([5, 1, 4, 2, 3], q) == expected


def test_percentile_of_nothing_is_nan():
    assert percentile([], 99) != percentile([], 99)


def test_command_rates_split_writes_and_reads():
    before = {"insert": 10, "findAndModify": 5, "find": 100, "getMore": 1, "serverStatus": 3}
    after = {"insert": 30, "findAndModify": 25, "update": 10, "find": 140, "getMore": 1,
             "serverStatus": 9, "aggregate": 10}
    assert command_rates(before, after, 10) == {"ops": 10, "writes": 5, "reads": 5}


HTTP = "<module> (nameko:8);run (nameko/cli/run.py:1);handle (services/kit/http.py:10)"
STACKS = [
    f"{HTTP};find_one (/x/site-packages/pymongo/collection.py:5) 6",
    f"{HTTP};load (/x/site-packages/marshmallow/schema.py:9) 3",
    "<module> (nameko:8);wait (/usr/lib/python3.11/threading.py:1) 1",
    "",
]


def test_profile_summary_ranks_frames_by_own_and_inclusive_time_and_by_package():
    summary = profiles.summary(profiles.parse(STACKS), n=3)
    assert summary["samples"] == 10
    assert summary["own_percent"][0] == [
        "find_one (/x/site-packages/pymongo/collection.py:5)", 60.0]
    assert summary["inclusive_percent"][0] == ["<module> (nameko:8)", 100.0]
    assert summary["inclusive_percent"][2] == ["handle (services/kit/http.py:10)", 90.0]
    assert summary["package_percent"] == [["pymongo", 60.0], ["marshmallow", 30.0],
                                          ["python", 10.0]]
    assert profiles.package("handle (services/kit/http.py:10)") == "kit/http.py"


@pytest.mark.parametrize("frame, where", [
    ("f (/v/lib/python3.11/site-packages/pymongo/pool.py:3)", "pymongo"),
    ("f (/work/services/kit/versioned.py:3)", "kit/versioned.py"),
    ("f (/work/services/deals/store.py:3)", "deals/store.py"),
    ("f (/usr/lib/python3.11/json/decoder.py:3)", "python"),
    ("f (eventlet/greenio/base.py:370)", "eventlet"),
    ("f (deals/service.py:101)", "deals/service.py"),
    ("f (copy.py:280)", "python"), ("f (<frozen abc>:119)", "python")])
def test_profile_package_of_a_frame(frame, where):
    assert profiles.package(frame) == where


def test_lead_latency_runs_from_its_send_to_the_first_count_including_it():
    sent = [10.0, 10.1, 10.2]
    seen = [(10.05, 5), (10.15, 6), (10.30, 6), (10.40, 8)]
    lat = pipeline.latencies(sent, seen, baseline=5)
    assert [round(x, 2) for x in lat] == [0.15, 0.3, 0.2]


def test_lead_latency_leaves_out_leads_never_counted():
    assert pipeline.latencies([1.0, 2.0], [(1.5, 1)], baseline=0) == [0.5]


def test_cpu_use_keeps_a_place_for_a_process_it_cannot_read():
    used, load = CpuUse([None, os.getpid()]).percent()
    assert used[0] is None and isinstance(used[1], int) and load >= 0
