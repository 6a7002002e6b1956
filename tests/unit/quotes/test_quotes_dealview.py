"""The quotes service's view of deals from deal.* events, in any arrival order."""
import pytest

from quotes import dealview, domain


@pytest.mark.parametrize("stage,status", [("proposal", "open"), ("won", "won"),
                                          ("lost", "lost")])
def test_an_update_says_whether_the_deal_is_open(stage, status):
    newest, _ = dealview.facts("deal.updated", {"deal_id": "d1", "stage": stage,
                                                "owner_id": "ann", "pipeline_id": "default"})
    assert newest["status"] == status


def test_a_view_made_by_an_update_before_the_creation_takes_quotes():
    # the whole-platform funnel: PATCH's deal.updated overtook deal.created, and creating
    # a quote answered 500 (KeyError 'status') instead of pricing it
    view, _ = dealview.facts("deal.updated", {"deal_id": "d1", "stage": "proposal",
                                              "owner_id": "ann"})
    domain.check_deal(view, "d1")  # open: no error
