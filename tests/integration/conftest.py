"""Integration level: real RabbitMQ (a fresh vhost per test) and real FerretDB (a fresh
database per test), with services run in-process by nameko's `container_factory` and
`runner_factory`. Faults are injected for real: a TCP proxy cut between a service and the
broker, a relay stopped between publish and removal, handlers that raise."""
import functools
import os

import pytest

from tests.support.proxy import broker_proxy, database_proxy  # noqa: F401 - fixtures
from tests.support.queryplans import RECORDER, describe, scans, shape, write_inventory
from tests.support.wait import wait_for

_EXPLAINED = {}


@pytest.fixture(autouse=True)
def queries_use_indexes(mongo_client, mongo_db_name):
    """Fails a test whose services sent a query that reads a whole growing collection
    (tests/support/queryplans.py); each query shape is explained once per session."""
    RECORDER.take()
    RECORDER.recording = True
    yield
    RECORDER.recording = False
    failures = []
    for database, caller, (coll, filter_, sort) in RECORDER.take():
        key = (coll, shape(filter_), shape(sort or {}))
        if key in _EXPLAINED:
            continue
        # a service creates its indexes in the background as it starts: a test that ended
        # first may not have them yet, so a scan is looked at again before it counts
        plan = functools.partial(scans, mongo_client[database], coll, filter_, sort)
        verdict = wait_for(lambda plan=plan: not plan(), timeout=3) or plan()
        if verdict is True:
            _EXPLAINED[key] = (caller, coll, describe(filter_), describe(sort or {}))
        else:
            failures.append(f"{caller}: {coll} {filter_!r} sort={sort!r} -> {verdict}")
    assert not failures, "queries without an index:\n" + "\n".join(sorted(set(failures)))


def pytest_sessionfinish(session):
    """`make queries` writes the inventory of what was explained to docs/queries.md."""
    target = os.environ.get("DEALFLOW_QUERY_INVENTORY")
    if target and _EXPLAINED:
        write_inventory(target, _EXPLAINED.values())
