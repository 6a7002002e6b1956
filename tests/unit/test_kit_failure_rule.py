"""The one rule that says which handler failures are retried and which dead-letter at once."""
import pytest
from marshmallow import ValidationError
from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

from kit.amqp import PublishError
from kit.consumer import is_permanent
from kit.errors import Conflict, Invalid, NotFound, Retryable, Unavailable


@pytest.mark.parametrize("exc", [
    Conflict("stage gate"), NotFound("no deal"), Invalid("bad"),
    ValidationError({"data": ["bad"]}),
])
def test_failures_that_can_never_pass_are_permanent(exc):
    assert is_permanent(exc)


@pytest.mark.parametrize("exc", [
    AutoReconnect("down"), ServerSelectionTimeoutError("down"), PublishError("nacked"),
    ConnectionError("reset"), TimeoutError("slow"), Unavailable("later"),
    Retryable("kept changing"), RuntimeError("a bug, fixed by the next deploy"),
])
def test_transient_and_unknown_failures_are_retried(exc):
    assert not is_permanent(exc)


def test_a_handler_may_declare_its_own_rule():
    assert is_permanent(LookupError("x"), permanent=(LookupError,))
    assert not is_permanent(Conflict("x"), transient=(Conflict,))
