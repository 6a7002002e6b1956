"""Reasons as a picklist with other + text (kit.reasons)."""
import pytest

from kit import reasons
from kit.errors import Invalid

PICK = [{"key": "price"}, {"key": "timing"}]


@pytest.mark.parametrize("reason,text,expected", [
    ("price", None, ("price", None)),
    ("price", " too high ", ("price", "too high")),
    ("other", "merger", ("other", "merger")),
    ("went quiet", None, ("other", "went quiet")),
    ("went quiet", "for months", ("other", "went quiet: for months")),
])
def test_resolve(reason, text, expected):
    assert reasons.resolve(PICK, reason, text) == expected


@pytest.mark.parametrize("reason,text,field", [("", None, "reason"), (None, "x", "reason"),
                                               ("other", " ", "reason_text")])
def test_refused(reason, text, field):
    with pytest.raises(Invalid) as err:
        reasons.resolve(PICK, reason, text)
    assert field in err.value.extra["errors"]


def test_other_is_always_offered_last():
    assert [r["key"] for r in reasons.with_other(PICK)] == ["price", "timing", "other"]
    assert [r["key"] for r in reasons.with_other([{"key": "other"}, *PICK])][-1] == "other"
