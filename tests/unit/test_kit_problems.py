"""Errors are mapped to HTTP once: every kind gets its status and a problem+json body."""
import json

import pytest
from marshmallow import ValidationError
from pymongo.errors import ServerSelectionTimeoutError

from kit import errors
from kit.amqp import PublishError
from kit.errors import Conflict, Invalid, NotFound, PreconditionRequired
from kit.http import decode_cursor, encode_cursor, problem_from_exception


@pytest.mark.parametrize("exc, status, title", [
    (ValidationError({"name": ["Missing data for required field."]}), 400, "Invalid request"),
    (Invalid("bad"), 400, "Invalid request"),
    (NotFound("no lead x"), 404, "Not found"),
    (Conflict("duplicate", existing_id="l1"), 409, "Conflict"),
    (PreconditionRequired("If-Match"), 428, "Precondition required"),
    (ServerSelectionTimeoutError("down"), 503, "Service unavailable"),
    (PublishError("down"), 503, "Service unavailable"),
    (ZeroDivisionError("secret detail"), 500, "Internal error"),
])
def test_exceptions_map_to_problems(exc, status, title):
    response = problem_from_exception(exc)
    body = json.loads(response.get_data())
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    assert body["status"] == status and body["title"] == title
    assert "secret detail" not in response.get_data(as_text=True)


def test_validation_problem_carries_per_field_messages():
    body = json.loads(problem_from_exception(
        ValidationError({"email": ["Not a valid email address."]})).get_data())
    assert body["errors"] == {"email": ["Not a valid email address."]}


def test_extra_fields_of_a_domain_error_reach_the_client():
    body = json.loads(problem_from_exception(Conflict("dup", existing_id="l1")).get_data())
    assert body["existing_id"] == "l1" and body["detail"] == "dup"


def test_cursor_round_trip_and_garbage():
    assert decode_cursor(encode_cursor(["2026-11-26T12:00:00Z", "abc"])) == [
        "2026-11-26T12:00:00Z", "abc"]
    with pytest.raises(ValidationError):
        decode_cursor("%%%not-base64")


def test_extra_fields_cannot_replace_the_standard_members():
    response = problem_from_exception(Conflict("dup", status="open", title="x", deal="d1"))
    body = json.loads(response.get_data())
    assert response.status_code == 409
    assert (body["status"], body["title"], body["deal"]) == (409, "Conflict", "d1")


@pytest.mark.parametrize("cls", [c for c in vars(errors).values()
                                 if isinstance(c, type) and issubclass(c, errors.DomainError)])
def test_domain_errors_carry_no_http_status(cls):
    assert not hasattr(cls("x"), "status")


def test_a_domain_subclass_takes_the_status_of_its_kit_base():
    class GateClosed(Conflict):
        title = "Gate closed"

    response = problem_from_exception(GateClosed("missing", missing_fields=["budget"]))
    body = json.loads(response.get_data())
    assert response.status_code == 409
    assert (body["title"], body["missing_fields"]) == ("Gate closed", ["budget"])
