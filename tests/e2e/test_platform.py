"""The five services as separate processes: each comes up ready, documents itself, exposes
its metrics, answers problems for bad routes, and stops cleanly on SIGTERM."""
import pytest
import requests

from tests.support.platform import SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_service_is_alive_ready_and_documented(platform, service):
    url = platform.urls[service]
    assert requests.get(url + "/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(url + "/readyz", timeout=5).json()
    assert ready == {"status": "ready", "checks": {"mongodb": "ok", "indexes": "ok", "amqp": "ok"}}
    spec = requests.get(url + "/openapi.json", timeout=5).json()
    assert spec["openapi"] == "3.0.3"
    assert {"/healthz", "/readyz", "/metrics", "/openapi.json"} <= set(spec["paths"])
    missing = requests.get(url + "/api/v1/no-such-thing", timeout=5)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"
    metrics = requests.get(url + "/metrics", timeout=5).text
    assert 'http_requests_total{method="GET",route="/healthz",status="200"}' in metrics
