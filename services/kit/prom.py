"""Prometheus helpers: one registry per container, HTTP request metrics, dead-letter depth,
the age of the oldest event waiting in an outbox.

A registry per container (not the process-global one) lets tests run several services in
one process without duplicate-metric errors.
"""
import logging
import time

from nameko.extensions import DependencyProvider, SharedExtension
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from kit.amqp import queue_depths
from kit.fields import utcnow

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class DeadLetterCollector:
    """Reports `dealflow_dead_letter_messages{queue}` by asking the broker at scrape time
    (cached briefly so a scrape storm does not hammer it)."""

    def __init__(self, amqp_uri, cache_seconds=5.0):
        self.amqp_uri = amqp_uri
        self.queues = set()
        self.cache_seconds = cache_seconds
        self._cached = (0.0, {})

    def collect(self):
        family = GaugeMetricFamily(
            "dealflow_dead_letter_messages",
            "Messages waiting in a dead-letter queue of this service",
            labels=["queue"],
        )
        stamp, depths = self._cached
        if self.queues and time.monotonic() - stamp > self.cache_seconds:
            try:
                depths = queue_depths(self.amqp_uri, sorted(self.queues))
                self._cached = (time.monotonic(), depths)
            except Exception as exc:  # noqa: BLE001 - a scrape must not fail with the broker
                log.warning("dead-letter depth unavailable: %s", exc)
        for name in sorted(self.queues):
            if name in depths:
                family.add_metric([name], depths[name])
        yield family


class OutboxAgeCollector:
    """Reports `dealflow_outbox_oldest_seconds{service}`: how long the oldest event still in
    an outbox of this instance's service has waited (0 when none does). The relay notes when
    that event was written once per sweep; the age is taken at scrape time, so it keeps
    growing while the database cannot be asked either. Absent where no relay runs."""

    def __init__(self, service):
        self.service = service
        self.relaying = False
        self.oldest = None

    def collect(self):
        family = GaugeMetricFamily(
            "dealflow_outbox_oldest_seconds",
            "Age of the oldest event waiting in an outbox of this service",
            labels=["service"],
        )
        if self.relaying:
            oldest = self.oldest
            age = 0.0 if oldest is None else max((utcnow() - oldest).total_seconds(), 0.0)
            family.add_metric([self.service], age)
        yield family


class PromRegistry(SharedExtension):
    """The container's registry and the metrics the kit itself records."""

    def setup(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "http_requests_total", "HTTP requests by route and status",
            ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "http_request_duration_seconds", "HTTP request latency by route",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.dead_letters = DeadLetterCollector(self.container.config.get("AMQP_URI"))
        self.registry.register(self.dead_letters)
        self.outbox = OutboxAgeCollector(self.container.service_name)
        self.registry.register(self.outbox)

    def observe_request(self, method, route, status, seconds):
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def exposition(self):
        return generate_latest(self.registry)


class Metrics(DependencyProvider):
    """Gives a service its container's registry, to define and update its own metrics."""

    prom = PromRegistry()

    def get_dependency(self, worker_ctx):
        return self.prom.registry
