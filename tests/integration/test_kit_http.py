"""The HTTP kit against real servers: problem+json for every error, 503 (never a 500 with a
traceback) when MongoDB is unreachable, recovery without restart, readiness, request metrics
and OpenAPI."""

import pytest
from eventlet.event import Event
from nameko.rpc import rpc
from nameko.standalone.rpc import ClusterRpcProxy

from tests.conftest import free_port
from tests.support.things import ThingsRpcService, ThingsService
from tests.support.wait import wait_for

PROBLEM = "application/problem+json"


@pytest.fixture
def things(container_factory, make_config, api):
    def start(**overrides):
        config = make_config("leads", **overrides)
        container = container_factory(ThingsService, config)
        container.start()
        return api(config), config
    return start


@pytest.mark.parametrize("body, field, message", [
    ({}, "name", "Missing data for required field."),
    ({"name": ""}, "name", "Length must be between 1 and 50."),
    ({"name": "a", "source": "fax"}, "source", "Must be one of: api, web_form."),
    ({"name": "a", "colour": "red"}, "colour", "Unknown field."),
])
def test_invalid_body_is_400_naming_the_field_and_writes_nothing(things, mongo_db, body, field,
                                                                  message):
    client, _ = things()
    resp = client.post("/api/v1/things", json=body)
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == PROBLEM
    assert resp.json()["errors"][field] == [message]
    assert mongo_db.things.count_documents({}) == 0


def test_body_that_is_not_json_is_400(things):
    client, _ = things()
    resp = client.post("/api/v1/things", data=b"{nope",
                       headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert "not valid JSON" in resp.json()["detail"]


def test_not_found_conflict_and_unknown_route_are_problems(things):
    client, _ = things()
    assert client.post("/api/v1/things", json={"name": "a"}).status_code == 201
    conflict = client.post("/api/v1/things", json={"name": "a"})
    assert (conflict.status_code, conflict.headers["Content-Type"]) == (409, PROBLEM)
    missing = client.get("/api/v1/things/nope")
    assert (missing.status_code, missing.json()["title"]) == (404, "Not found")
    route = client.get("/api/v1/nowhere")
    assert (route.status_code, route.headers["Content-Type"]) == (404, PROBLEM)
    method = client.delete("/api/v1/things/x")
    assert (method.status_code, method.headers["Content-Type"]) == (405, PROBLEM)
    assert set(method.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}


MB = 1024 * 1024


def test_a_body_over_the_limit_is_413_problem_and_writes_nothing(things, mongo_db):
    client, _ = things()
    body = b'{"name": "big", "source": "api", "pad": "' + b"x" * (20 * MB) + b'"}'
    resp = client.post("/api/v1/things", data=body,
                       headers={"Content-Type": "application/json"})
    assert (resp.status_code, resp.headers["Content-Type"]) == (413, PROBLEM)
    assert resp.json()["max_bytes"] == MB
    assert mongo_db.things.count_documents({}) == 0
    # the connection stays usable: eventlet discarded the unread body
    assert client.post("/api/v1/things", json={"name": "small"}).status_code == 201


def test_a_chunked_body_is_bounded_while_it_is_read(things, mongo_db):
    client, _ = things(HTTP={"max_body_bytes": 64 * 1024})

    def chunks():
        yield b'{"name": "big", "pad": "'
        for _ in range(64):
            yield b"x" * 4096
        yield b'"}'

    resp = client.post("/api/v1/things", data=chunks(),
                       headers={"Content-Type": "application/json"})
    assert (resp.status_code, resp.headers["Content-Type"]) == (413, PROBLEM)
    assert mongo_db.things.count_documents({}) == 0


def test_a_small_chunked_body_is_read_not_taken_as_empty(things):
    client, _ = things()
    resp = client.post("/api/v1/things", data=iter([b'{"name": ', b'"chunked"}']),
                       headers={"Content-Type": "application/json"})
    assert resp.status_code == 201


def test_an_over_long_url_is_414_problem(things):
    client, _ = things()
    resp = client.get("/api/v1/things/x?q=" + "a" * 9000)
    assert (resp.status_code, resp.headers["Content-Type"]) == (414, PROBLEM)
    assert resp.json()["title"] == "URI too long"


@pytest.mark.parametrize("depth", [33, 100_000])
def test_deep_json_is_400_not_a_recursion_error(things, mongo_db, depth):
    client, _ = things()
    body = '{"name": "deep", "x": ' + "[" * depth + "]" * depth + "}"
    resp = client.post("/api/v1/things", data=body,
                       headers={"Content-Type": "application/json"})
    assert (resp.status_code, resp.headers["Content-Type"]) == (400, PROBLEM)
    assert "nests deeper than 32 levels" in resp.json()["detail"]
    assert mongo_db.things.count_documents({}) == 0


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_integers_beyond_64_bits_are_400_naming_the_field(things, mongo_db, value):
    client, _ = things()
    body = f'{{"name": "n", "custom": {{"big": {value}}}}}'
    resp = client.post("/api/v1/things", data=body,
                       headers={"Content-Type": "application/json"})
    assert (resp.status_code, resp.headers["Content-Type"]) == (400, PROBLEM)
    assert resp.json()["errors"] == {
        "custom": {"big": ["Integers must lie between -2^63 and 2^63-1."]}}
    assert mongo_db.things.count_documents({}) == 0


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_numbers_json_does_not_allow_are_400(things, literal):
    client, _ = things()
    resp = client.post("/api/v1/things", data=f'{{"name": "n", "x": {literal}}}',
                       headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and "not valid JSON" in resp.json()["detail"]


def test_database_down_gives_503_problem_and_not_ready(things):
    dead = f"mongodb://127.0.0.1:{free_port()}"
    client, _ = things(MONGO_URI=dead, MONGO={"timeout_ms": 300})
    resp = client.post("/api/v1/things", json={"name": "a"})
    assert resp.status_code == 503
    assert resp.headers["Content-Type"] == PROBLEM
    assert "Traceback" not in resp.text
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["mongodb"].startswith("unreachable")
    assert client.get("/healthz").status_code == 200


def test_ready_metrics_and_openapi(things):
    client, _ = things()
    assert client.get("/readyz").json() == {
        "status": "ready", "checks": {"mongodb": "ok", "indexes": "ok", "amqp": "ok"}}
    client.post("/api/v1/things", json={"name": "m"})
    client.post("/api/v1/things", json={})
    text = client.get("/metrics").text
    assert ('http_requests_total{method="POST",route="/api/v1/things",status="201"} 1.0'
            in text)
    assert ('http_requests_total{method="POST",route="/api/v1/things",status="400"} 1.0'
            in text)
    assert 'http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/api/v1/things"}' \
        in text
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/api/v1/things"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ThingIn"}
    assert spec["paths"]["/api/v1/things/{id}"]["get"]["parameters"][0]["name"] == "id"
    assert set(spec["components"]["schemas"]["ThingIn"]["properties"]) == {"name", "source"}
    # schemathesis found a 414 (an over-long token) that the document did not list
    assert all("414" in op["responses"] for ops in spec["paths"].values()
               for op in ops.values())



def test_database_outage_is_503_and_the_service_recovers_by_itself(things, database_proxy):
    client, _ = things(MONGO_URI=database_proxy.uri, MONGO={"timeout_ms": 500})
    assert client.post("/api/v1/things", json={"name": "before"}).status_code == 201
    database_proxy.down()
    assert client.post("/api/v1/things", json={"name": "during"}).status_code == 503
    assert client.get("/readyz").status_code == 503
    database_proxy.up()
    assert wait_for(lambda: client.get("/readyz").status_code == 200)
    assert client.post("/api/v1/things", json={"name": "after"}).status_code == 201


def test_broker_outage_makes_the_service_not_ready_until_it_returns(things, broker_proxy):
    client, _ = things(AMQP_URI=broker_proxy.uri)
    assert client.get("/readyz").status_code == 200
    broker_proxy.down()
    assert wait_for(lambda: client.get("/readyz").status_code == 503)
    assert client.get("/readyz").json()["checks"]["amqp"] == "unreachable"
    # writes still succeed: their events wait in the outbox
    assert client.post("/api/v1/things", json={"name": "queued"}).status_code == 201
    broker_proxy.up()
    assert wait_for(lambda: client.get("/readyz").status_code == 200)


class Busy(ThingsRpcService):
    """Workers that stay busy until the test lets them go."""

    name = "things"
    release = None
    running = []

    @rpc
    def hold(self):
        self.running.append(1)
        self.release.wait()


def test_probes_and_metrics_answer_while_every_worker_is_busy(container_factory, make_config,
                                                              api):
    Busy.release, Busy.running = Event(), []
    config = make_config("leads", max_workers=2)
    container_factory(Busy, config).start()
    client = api(config)
    with ClusterRpcProxy(config) as proxy:
        pending = [proxy.things.hold.call_async() for _ in range(2)]
        assert wait_for(lambda: len(Busy.running) == 2), "both workers are held"
        # were these queued for a worker, they would wait until the release below
        assert client.get("/healthz", timeout=5).status_code == 200
        assert client.get("/readyz", timeout=5).status_code == 200
        assert "http_requests_total" in client.get("/metrics", timeout=5).text
        assert client.get("/openapi.json", timeout=5).status_code == 200
        Busy.release.send()
        for call in pending:
            call.result()


def test_a_second_service_on_a_taken_port_fails_to_start_instead_of_sharing_it(
        container_factory, make_config):
    """eventlet listens with SO_REUSEPORT unless told not to: two services given one port
    would both bind it and split its requests (a 404 from the wrong one, now and then)."""
    config = make_config("leads")
    container_factory(ThingsService, config).start()
    second = container_factory(ThingsService, {**config})
    with pytest.raises(OSError, match="in use"):
        second.start()
