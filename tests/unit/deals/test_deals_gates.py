"""Stage gates (SOPs) of the default pipeline, and the rules a pipeline's stages obey."""
import datetime as dt
from decimal import Decimal

import pytest

from deals import pipelines as P
from kit.errors import Conflict

PIPELINE = P.default_pipeline()
QUOTE = {"quote_id": "q1", "version": 1, "total": Decimal("10.00"), "currency": "EUR",
         "accepted_at": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)}
READY = {"name": "Acme", "needs_summary": "wants 3 seats", "amount": Decimal("100"),
         "currency": "EUR", "accepted_quote": QUOTE, "checklist": ["discovery_call_held"],
         "contract_signed": {"contract_id": "c1", "signed_at": "2026-01-01T00:00:00Z"}}


def without(*names):
    deal = dict(READY)
    for name in names:
        deal.pop(name)
    return deal


@pytest.mark.parametrize(("deal", "from_key", "to_key", "fields", "checklist"), [
    # entering a stage: its own gate
    (without(), "discovery", "needs_confirmed", [], []),
    (without("checklist"), "discovery", "needs_confirmed", [], ["discovery_call_held"]),
    (without("needs_summary"), "needs_confirmed", "proposal", ["needs_summary"], []),
    ({**READY, "needs_summary": "   "}, "needs_confirmed", "proposal", ["needs_summary"], []),
    (without("amount", "currency"), "proposal", "quote_negotiation",
     ["amount", "currency"], []),
    (without("accepted_quote"), "quote_negotiation", "contract_payment",
     ["accepted_quote"], []),
    (without(), "quote_negotiation", "contract_payment", [], []),
    # skipping ahead meets every skipped gate, in pipeline order, each once
    (without("checklist", "needs_summary", "accepted_quote"), "discovery", "contract_payment",
     ["needs_summary", "accepted_quote"], ["discovery_call_held"]),
    ({"name": "x"}, None, "proposal", ["needs_summary"], ["discovery_call_held"]),
    ({"name": "x"}, None, "discovery", [], []),
    # moving back: only the target's gate
    (without("checklist"), "proposal", "discovery", [], []),
    (without("checklist"), "proposal", "needs_confirmed", [], ["discovery_call_held"]),
    # won is a forward move: the gates of every open stage after the deal's one, then won's
    (without("needs_summary", "accepted_quote", "checklist"), "discovery", "won",
     ["needs_summary", "accepted_quote"], ["discovery_call_held"]),
    (without("accepted_quote"), "quote_negotiation", "won", ["accepted_quote"], []),
    (without("amount"), "contract_payment", "won", ["amount"], []),
    # lost: only its own gate (a deal can be lost from anywhere)
    ({"name": "x"}, "discovery", "lost", [], []),
    # reopening from a terminal stage: only the target's gate
    (without("needs_summary"), "lost", "proposal", ["needs_summary"], []),
    (without("checklist", "needs_summary"), "won", "quote_negotiation", [], []),
])
def test_missing_lists_exactly_what_the_gates_lack(deal, from_key, to_key, fields, checklist):
    assert P.missing_for(PIPELINE, deal, from_key, to_key) == {
        "fields": fields, "checklist": checklist}


def test_custom_fields_can_be_required():
    stages = P.normalise([
        {"key": "a", "name": "A", "probability": 10},
        {"key": "b", "name": "B", "probability": 50, "required_fields": ["budget_owner"]},
        {"key": "won", "name": "Won", "probability": 100},
        {"key": "lost", "name": "Lost", "probability": 0}])
    pipeline = {"_id": "p", "stages": stages}
    assert P.missing_for(pipeline, {"custom": {}}, "a", "b")["fields"] == ["budget_owner"]
    assert P.missing_for(pipeline, {"custom": {"budget_owner": "CFO"}}, "a", "b")["fields"] == []


def test_default_pipeline_has_the_issue_stages_in_order():
    keys = [s["key"] for s in PIPELINE["stages"]]
    assert keys == ["discovery", "needs_confirmed", "proposal", "quote_negotiation",
                    "contract_payment", "won", "lost"]
    assert [s["terminal"] for s in PIPELINE["stages"]] == [False] * 5 + [True, True]
    probabilities = [s["probability"] for s in PIPELINE["stages"][:5]]
    assert probabilities == sorted(probabilities)
    assert P.validate_stages(PIPELINE["stages"]) == {}


def _stages(*keys, won=100, lost=0):
    probability = {"won": won, "lost": lost}
    return [{"key": k, "name": k, "probability": probability.get(k, 50)} for k in keys]


@pytest.mark.parametrize(("stages", "message"), [
    (_stages("a", "a", "won", "lost"), "Duplicate stage keys: a."),
    (_stages("a", "lost"), "The terminal stage 'won' is required."),
    (_stages("a", "won"), "The terminal stage 'lost' is required."),
    (_stages("won", "a", "lost"), "The stages 'won' and 'lost' must come last."),
    (_stages("won", "lost", "x")[:2], "At least one open stage is required."),
    (_stages("a", "won", "lost", won=90), "The stage 'won' must have probability 100."),
    (_stages("a", "won", "lost", lost=5), "The stage 'lost' must have probability 0."),
    ([{**_stages("a")[0], "required_fields": ["Bad.Key"]}, *_stages("won", "lost")],
     "a: 'Bad.Key' is not a valid field or item key."),
    # stage keys are metrics label values: a bounded number per pipeline
    (_stages(*[f"s{i}" for i in range(P.MAX_STAGES - 1)], "won", "lost"),
     f"At most {P.MAX_STAGES} stages (won and lost included), got {P.MAX_STAGES + 1}."),
])
def test_invalid_pipelines_are_refused_with_a_reason(stages, message):
    assert message in P.validate_stages(stages)["stages"]


def test_checklist_items_are_every_item_any_stage_asks_for():
    assert P.checklist_items(PIPELINE) == ["discovery_call_held"]


def test_an_edit_may_remove_only_stages_without_open_deals():
    pipeline = P.default_pipeline()
    kept = [s for s in pipeline["stages"] if s["key"] != "proposal"]
    removed = P.removed_stages(pipeline, kept)
    assert removed == ["proposal"]
    P.check_edit(removed, 0)
    P.check_edit([], 3)
    with pytest.raises(Conflict) as exc:
        P.check_edit(removed, 2)
    assert exc.value.extra == {"stages": ["proposal"]}
