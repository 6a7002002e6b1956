"""If-Match names the version a change applies to: missing or malformed is 428, a version
that cannot exist is 409 at once (it would match nothing, and MongoDB takes no integer past
64 bits), never a 500."""
import json

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from kit.errors import PreconditionRequired
from kit.http import problem_from_exception
from kit.preconditions import if_match
from kit.versioned import Stale


def request_with(value):
    headers = {} if value is None else {"If-Match": value}
    return Request(EnvironBuilder(method="PATCH", headers=headers).get_environ())


@pytest.mark.parametrize("value, version", [
    ('"3"', 3), ('W/"3"', 3), ("3", 3), (' "0" ', 0), ('"007"', 7),
    (f'"{2**63 - 1}"', 2**63 - 1),
])
def test_if_match_names_a_version(value, version):
    assert if_match(request_with(value)) == version


@pytest.mark.parametrize("value", ['"x"', '"-1"', '"3", "4"', '"1.5"', '"²"', "*", ""])
def test_a_malformed_if_match_is_428(value):
    with pytest.raises(PreconditionRequired):
        if_match(request_with(value))


@pytest.mark.parametrize("value", [f'"{2**63}"', '"99999999999999999999999"',
                                   'W/"99999999999999999999999"'])
def test_a_version_past_64_bits_is_409_never_handed_to_mongodb(value):
    with pytest.raises(Stale) as caught:
        if_match(request_with(value))
    response = problem_from_exception(caught.value)
    assert response.status_code == 409
    assert "no entity can have" in json.loads(response.get_data())["detail"]


def test_a_missing_if_match_is_428():
    with pytest.raises(PreconditionRequired):
        if_match(request_with(None))


def test_where_if_match_is_optional_a_missing_one_is_none():
    assert if_match(request_with(None), required=False) is None
