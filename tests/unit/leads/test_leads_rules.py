"""Scoring and assignment rules, table-driven, plus the config parsing that feeds them."""
import pytest

from leads import assignment, scoring
from leads.extensions import rules_from_config
from tests.conftest import ROOT
from tests.support.configs import shipped_config

RULES = scoring.parse_rules([
    {"name": "has_company", "field": "company", "op": "present", "points": 10},
    {"name": "no_phone", "field": "phone", "op": "absent", "points": -5},
    {"name": "germany", "field": "country", "op": "equals", "value": "DE", "points": 7},
    {"name": "warm", "field": "source", "op": "in", "value": ["referral", "event"],
     "points": 20},
    {"name": "not_ads", "field": "source", "op": "not_in", "value": ["ads"], "points": 1},
    {"name": "edu", "field": "email", "op": "endswith", "value": [".edu"], "points": -10},
    {"name": "business", "field": "email", "op": "not_endswith", "value": ["@gmail.com"],
     "points": 15},
    {"name": "cpc", "field": "utm.medium", "op": "equals", "value": "CPC", "points": 3},
    {"name": "big", "field": "custom.size", "op": "in", "value": ["enterprise"], "points": 25},
    {"name": "met", "activity": "meeting", "points": 20},
    {"name": "two_calls", "activity": "call", "min_count": 2, "points": 8},
])
GRADES = {"A": 60, "B": 35, "C": 15}


@pytest.mark.parametrize("lead,activities,fired", [
    ({}, [], ["no_phone"]),
    ({"company": "  "}, [], ["no_phone"]),
    ({"company": "AE", "phone": "+1"}, [], ["has_company"]),
    ({"phone": "+1", "country": "de"}, [], ["germany"]),
    ({"phone": "+1", "source": "Referral"}, [], ["warm", "not_ads"]),
    ({"phone": "+1", "source": "ads"}, [], []),
    ({"phone": "+1", "email": "x@mit.edu"}, [], ["edu", "business"]),
    ({"phone": "+1", "email": "x@GMAIL.com"}, [], []),
    ({"phone": "+1", "utm": {"medium": "cpc"}}, [], ["cpc"]),
    ({"phone": "+1", "custom": {"size": "Enterprise"}}, [], ["big"]),
    ({"phone": "+1"}, [{"type": "meeting"}], ["met"]),
    ({"phone": "+1"}, [{"type": "call"}], []),
    ({"phone": "+1"}, [{"type": "call"}, {"type": "call"}], ["two_calls"]),
])
def test_rules_that_fire(lead, activities, fired):
    points, grade, names = scoring.score(lead, activities, RULES, GRADES)
    assert names == fired
    assert points == sum(r.points for r in RULES if r.name in fired)
    assert grade == scoring.grade_for(points, GRADES)


@pytest.mark.parametrize("points,grade", [
    (100, "A"), (60, "A"), (59, "B"), (35, "B"), (34, "C"), (15, "C"), (14, "D"), (-5, "D")])
def test_grade_thresholds(points, grade):
    assert scoring.grade_for(points, GRADES) == grade


@pytest.mark.parametrize("raw", [
    [{"name": "x", "points": 1}],                                       # neither
    [{"name": "x", "points": 1, "field": "a", "activity": "call"}],     # both
    [{"name": "x", "points": 1, "field": "a", "op": "regex"}],          # unknown op
    [{"name": "x", "field": "a"}],                                      # no points
    [{"name": "x", "points": "many", "field": "a"}],                    # bad points
])
def test_malformed_scoring_rule_is_refused(raw):
    with pytest.raises(scoring.RuleError):
        scoring.parse_rules(raw)


@pytest.mark.parametrize("raw", [{"A": 10, "B": 20, "C": 5}, {"A": 10, "B": 5}])
def test_malformed_grades_are_refused(raw):
    with pytest.raises(scoring.RuleError):
        scoring.parse_grades(raw)


TERRITORIES = assignment.parse_territories([
    {"name": "us_west", "countries": ["us"], "regions": ["CA", "wa"], "team": "west"},
    {"name": "us", "countries": ["US"], "team": "na"},
    {"name": "dach", "countries": ["DE", "AT", "CH"], "team": "dach"},
    {"name": "catch_all", "team": "world"},
])


@pytest.mark.parametrize("country,region,territory", [
    ("US", "CA", "us_west"),
    ("US", " ca ", "us_west"),
    ("US", "NY", "us"),
    ("US", None, "us"),
    ("de", None, "dach"),
    ("CH", "ZH", "dach"),
    ("FR", None, "catch_all"),
    (None, None, "catch_all"),
])
def test_territory_is_the_first_match_in_order(country, region, territory):
    assert assignment.route(country, region, TERRITORIES).name == territory


def test_no_territory_matches_gives_none():
    assert assignment.route("FR", None, TERRITORIES[:3]) is None


CAPS = {"ann": 2, "bob": 1, "cid": 2}.__getitem__


@pytest.mark.parametrize("start,counts,n,owners,moved", [
    (0, {}, 3, ["ann", "bob", "cid"], 3),
    (1, {}, 2, ["bob", "cid"], 2),
    (0, {}, 5, ["ann", "bob", "cid", "ann", "cid"], 6),  # bob's cap is 1: skipped
    (0, {"ann": 2}, 2, ["bob", "cid"], 3),               # ann full from the start
    (0, {}, 6, ["ann", "bob", "cid", "ann", "cid", None], 6),  # everyone full: queue
    (0, {"ann": 2, "bob": 1, "cid": 2}, 1, [None], 0),
    (7, {}, 1, ["bob"], 1),                              # cursor wraps
])
def test_round_robin_plan_skips_reps_at_cap(start, counts, n, owners, moved):
    assert assignment.plan(["ann", "bob", "cid"], start, counts, CAPS, n) == (owners, moved)


@pytest.mark.parametrize("start,order", [
    (0, ["a", "b", "c"]), (1, ["b", "c", "a"]), (5, ["c", "a", "b"])])
def test_rotation_starts_at_the_cursor(start, order):
    assert assignment.rotation(["a", "b", "c"], start) == order
    assert assignment.rotation([], start) == []


def test_fallback_queue_keeps_the_team():
    rules = assignment.AssignmentRules(fallback_queue="inbox")
    queued = assignment.queued(TERRITORIES[2], rules)
    assert (queued.owner_id, queued.queue, queued.team, queued.rule) == (
        None, "inbox", "dach", "fallback")
    assert assignment.queued(None, rules).team is None


def test_caps_per_rep_override_the_default():
    rules = assignment.AssignmentRules(default_cap=5, caps={"ann": 1}, teams={"t": ["ann"]})
    assert (rules.cap_of("ann"), rules.cap_of("bob")) == (1, 5)
    assert rules.reps_of("t") == ["ann"] and rules.reps_of("none") == []


def test_shipped_config_parses():
    rules = rules_from_config(shipped_config(ROOT / "services" / "leads" / "config.yml"))
    assert rules.scoring and rules.assignment.territories and rules.response_minutes > 0


def test_scoring_counts_activity_types_kept_on_the_lead_as_it_counted_the_list():
    """The lead keeps its recent activities only, and how many of each type it had."""
    from leads import domain

    rules = scoring.parse_rules([{"name": "calls", "activity": "call", "points": 10,
                                 "min_count": 2}])
    grades = {"A": 60, "B": 35, "C": 15}
    listed = [{"type": "call"}, {"type": "note"}, {"type": "call"}]
    assert scoring.score({}, listed, rules, grades) == scoring.score(
        {}, {"call": 2, "note": 1}, rules, grades) == (10, "D", ["calls"])
    assert scoring.score({}, {"call": 1}, rules, grades)[2] == []
    assert domain.activity_counts({"activities": listed}) == {"call": 2, "note": 1}
    assert domain.activity_counts({"activities": listed[:1],
                                   "activity_counts": {"call": 9}}) == {"call": 9}
