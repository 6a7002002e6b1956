"""Errors are mapped to HTTP once: every kind gets its status and a problem+json body."""
import json

import pytest
from marshmallow import Schema, ValidationError, fields, validate
from pymongo.errors import ServerSelectionTimeoutError
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from kit import errors
from kit.amqp import PublishError
from kit.errors import (
    Conflict,
    Invalid,
    NotFound,
    PayloadTooLarge,
    PreconditionRequired,
    UriTooLong,
)
from kit.http import (
    decode_cursor,
    encode_cursor,
    json_body,
    problem_from_exception,
    query_args,
    read_body,
)


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


@pytest.mark.parametrize("exc, status, title", [
    (PayloadTooLarge("big", max_bytes=10), 413, "Content too large"),
    (UriTooLong("long"), 414, "URI too long"),
    (MethodNotAllowed(valid_methods=["GET", "HEAD"]), 405, "Method Not Allowed"),
])
def test_limit_errors_are_problems(exc, status, title):
    response = problem_from_exception(exc)
    assert (response.status_code, response.mimetype) == (status, "application/problem+json")
    assert json.loads(response.get_data())["title"] == title


def test_405_says_which_methods_are_allowed():
    response = problem_from_exception(MethodNotAllowed(valid_methods=["GET", "HEAD"]))
    assert response.headers["Allow"] == "GET, HEAD"


class Query(Schema):
    limit = fields.Integer(validate=validate.Range(1, 200))
    status = fields.String(validate=validate.OneOf(["open"]))


@pytest.mark.parametrize("args, errors", [
    ({"limit": "x"}, {"limit": ["Not a valid integer."]}),
    ({"limit": "0"}, {"limit": ["Must be greater than or equal to 1 and less than or equal "
                                "to 200."]}),
    ({"colour": "red"}, {"colour": ["Unknown query parameter."]}),
])
def test_query_errors_say_query_parameter(args, errors):
    request = Request(EnvironBuilder(query_string=args).get_environ())
    with pytest.raises(ValidationError) as err:
        query_args(request, Query())
    body = json.loads(problem_from_exception(err.value).get_data())
    assert body["errors"] == errors
    assert body["detail"] == f"Invalid query parameters: {', '.join(errors)}."


def test_a_bad_cursor_is_a_query_parameter_error():
    with pytest.raises(ValidationError) as err:
        decode_cursor("%%%not-base64")
    assert json.loads(problem_from_exception(err.value).get_data())["detail"] == (
        "Invalid query parameters: cursor.")


@pytest.mark.parametrize("body, limit, chunked", [
    (b"x" * 11, 10, False), (b"x" * 11, 10, True), (b"x" * 200_000, 100_000, True)])
def test_read_body_refuses_more_than_the_limit(body, limit, chunked):
    environ = EnvironBuilder(method="POST", data=body).get_environ()
    if chunked:
        del environ["CONTENT_LENGTH"]
        environ["wsgi.input_terminated"] = True
    with pytest.raises(PayloadTooLarge):
        read_body(Request(environ), limit)


def test_read_body_returns_a_body_within_the_limit():
    request = Request(EnvironBuilder(method="POST", data=b"x" * 10).get_environ())
    assert read_body(request, 10) == b"x" * 10
    assert read_body(request, 10) == b"x" * 10  # a second reader gets it too


@pytest.mark.parametrize("exc, header, value", [
    (errors.TooManyRequests("Slow down.", headers={"Retry-After": "30"}), "Retry-After", "30"),
    (Conflict("Busy.", headers={"Retry-After": "2"}), "Retry-After", "2"),
    (errors.Unauthorized("No token.", headers={"WWW-Authenticate": 'Bearer realm="x"'}),
     "WWW-Authenticate", 'Bearer realm="x"'),
])
def test_an_error_carries_its_headers_and_keeps_them_out_of_the_body(exc, header, value):
    response = problem_from_exception(exc)
    assert response.headers[header] == value
    assert header not in json.loads(response.get_data()) and "headers" not in json.loads(
        response.get_data())
    assert response.status_code == {"TooManyRequests": 429, "Conflict": 409,
                                    "Unauthorized": 401}[type(exc).__name__]


NOT_UNICODE = "The body holds text that is not valid Unicode"


def posted(body):
    return Request(EnvironBuilder(method="POST", data=body,
                                  content_type="application/json").get_environ())


@pytest.mark.parametrize("body", [
    rb'{"name": "\ud800"}',  # a high half alone
    rb'{"name": "x\udfffy"}',  # a low half alone
    rb'{"name": "\ude00\ud83d"}',  # a pair the wrong way round
    rb'{"\ud800": 1}',  # in a member name
    rb'{"tags": ["ok", {"deep": ["\udbff"]}]}',  # nested
    rb'{"custom": {"\ud800": 99999999999999999999}}',  # beside a too-large integer
    b'{"name": "\xed\xa0\x80"}',  # UTF-8 bytes of a surrogate
    '{"name": "\ud800"}'.encode("utf-16-le", "surrogatepass"),  # UTF-16, json.loads takes it
])
def test_a_lone_surrogate_is_400_not_valid_unicode(body):
    with pytest.raises(Invalid) as caught:
        json_body(posted(body))
    response = problem_from_exception(caught.value)
    assert response.status_code == 400
    assert json.loads(response.get_data())["detail"].startswith(NOT_UNICODE)


@pytest.mark.parametrize("body, loaded", [
    (rb'{"name": "\ud83d\ude00"}', {"name": "\U0001f600"}),
    ('{"name": "😀 行业"}'.encode(), {"name": "😀 行业"}),
    (rb'{"name": "\\ud800"}', {"name": "\\ud800"}),  # an escaped backslash: plain text
])
def test_surrogate_pairs_and_escaped_backslashes_are_text(body, loaded):
    assert json_body(posted(body)) == loaded
